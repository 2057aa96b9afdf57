// `npm run demo`'s load generator: RPS GET requests per second to http://ADDRESS/ for SECONDS (loopback, bounded
// to 2000 requests), then one line: sent, ok, failed.
import { request } from "node:http";

const [address, rps = "20", seconds = "10"] = process.argv.slice(2);
const at = address.lastIndexOf(":");
const [host, port] = [address.slice(0, at), Number(address.slice(at + 1))];
const total = Math.min(2000, Number(rps) * Number(seconds));
let sent = 0;
let ok = 0;
let failed = 0;
let done = 0;
const finish = () => {
  if (++done === total) console.log(`load: ${sent} requests at ${rps}/s to ${address}: ${ok} ok, ${failed} failed`);
};
const timer = setInterval(() => {
  if (sent >= total) return clearInterval(timer);
  sent++;
  const req = request({ host, port, path: "/", timeout: 10_000 }, (res) => {
    res.resume();
    res.on("end", () => {
      if (res.statusCode === 200) ok++;
      else failed++;
      finish();
    });
  });
  req.on("error", () => {
    failed++;
    finish();
  });
  req.end();
}, 1000 / Number(rps));
