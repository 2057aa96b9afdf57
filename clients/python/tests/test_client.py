"""The Python SDK against a real scheduler (started by test/src/python-sdk.test.ts, which sets CAPA_GRPC_ADDR and,
when the scheduler wants one, CAPA_TOKEN): submit, watch, stream logs, cancel, read an invoice, and errors with
field violations. Run with ``python3 -m unittest discover -s clients/python/tests``."""

import os
import time
import unittest

from capa_client import Client, InvalidArgument, NotFound, state_name

ADDR = os.environ.get("CAPA_GRPC_ADDR", "127.0.0.1:50051")
TOKEN = os.environ.get("CAPA_TOKEN") or None
TENANT = os.environ.get("CAPA_TEST_TENANT", "")


def eventually(check, what, timeout=60.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


class ClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.capa = Client(ADDR, TOKEN, tenant=TENANT)

    @classmethod
    def tearDownClass(cls):
        cls.capa.close()

    def test_submit_watch_logs_and_invoice(self):
        # The task sleeps so that its GPU time is well above the ~1 ms that rounds to one micro-dollar: a bare `echo`
        # can exit in under a millisecond, and its charge is then 0 (half-up rounding), which is correct but proves
        # nothing about the invoice.
        job = self.capa.submit(["sh", "-c", "echo hello-from-python; sleep 0.3"], gpus=1, gpu_models=["h100"])
        self.assertTrue(job.id.startswith("j"))
        self.assertEqual(list(job.spec.gpu_models), ["H100-80GB"])
        states = [state_name(e.state) for e in self.capa.watch(job.id)]
        self.assertEqual(states[-1], "SUCCEEDED", states)
        text = "".join(line.text for line in self.capa.logs(job.id) if line.stream == "stdout")
        self.assertIn("hello-from-python", text)
        invoice = eventually(
            lambda: (inv := self.capa.invoice(job_id=job.id)).lines and inv, "the job's invoice line", timeout=60
        )
        line = invoice.lines[0]
        self.assertEqual(line.job_id, job.id)
        self.assertGreaterEqual(line.gpu_milliseconds, 250)
        # The charge is the locked price times the GPU time, rounded half-up to the micro.
        charge = line.charges[0]
        price = charge.price_micros_per_gpu_hour
        self.assertEqual(charge.amount_micros, (2 * price * charge.gpu_milliseconds + 3_600_000) // 7_200_000)
        self.assertEqual(invoice.total_micros, sum(l.amount_micros for l in invoice.lines))
        self.assertGreater(invoice.total_micros, 0)

    def test_follow_logs_then_cancel(self):
        job = self.capa.submit(["sh", "-c", "echo started; exec sleep 120"], gpus=1)
        followed = self.capa.logs(job.id, follow=True)
        first = next(line for line in followed if line.stream == "stdout")
        self.assertIn("started", first.text)
        cancelled = self.capa.cancel(job.id, reason="python test")
        self.assertTrue(cancelled.cancel_requested)
        final = self.capa.wait(job.id)
        self.assertEqual(state_name(final.state), "CANCELLED")
        # The followed stream ends once the job is final.
        for _ in followed:
            pass

    def test_errors_carry_field_violations(self):
        with self.assertRaises(InvalidArgument) as caught:
            self.capa.submit(["true"], gpus=-1)
        self.assertEqual(caught.exception.violations[0].field, "spec.gpus_per_replica")
        self.assertIn("0..64", caught.exception.violations[0].description)
        with self.assertRaises(InvalidArgument) as unknown:
            self.capa.quote(gpus=1, gpu_models=["h1000"])
        self.assertEqual(unknown.exception.violations[0].field, "spec.gpu_models[0]")
        self.assertIn("H100-80GB", unknown.exception.message)
        with self.assertRaises(NotFound):
            self.capa.get("jdoesnotexist0000")

    def test_quote_offers_and_paged_listing(self):
        quote = self.capa.quote(gpus=1, gpu_models=["h100"], duration_seconds=3600)
        self.assertGreater(quote.feasible_offers, 0)
        self.assertGreater(quote.estimated_total_micros, 0)
        offers = self.capa.offers(gpu_model="h100", page_size=1)
        self.assertTrue(offers)
        self.assertTrue(all(o.gpu_model == "H100-80GB" for o in offers))
        ids = {self.capa.submit(["true"], gpus=0).id for _ in range(3)}
        listed = [j.id for j in self.capa.jobs(page_size=2)]
        self.assertTrue(ids <= set(listed), (ids, listed))
        self.assertEqual(len(listed), len(set(listed)))

    def test_services_apply_get_list_endpoints_delete(self):
        # Minimum 0 replicas: the service exists (ServiceService over the generated stubs) without placing one.
        applied = self.capa.apply_service(
            "py-svc", ["sh", "-c", "exec sleep 600"], regions={"eu-west": (0, 1)}, model_version="v1"
        )
        self.assertTrue(applied.changed)
        self.assertEqual(applied.service.revision, 1)
        again = self.capa.apply_service(
            "py-svc", ["sh", "-c", "exec sleep 600"], regions={"eu-west": (0, 1)}, model_version="v1"
        )
        self.assertFalse(again.changed)
        got = self.capa.service("py-svc")
        self.assertEqual(got.spec.model_version, "v1")
        self.assertEqual([r.region for r in got.spec.regions], ["eu-west"])
        self.assertIn("py-svc", [s.name for s in self.capa.services(page_size=1)])
        self.assertEqual(self.capa.endpoints("py-svc"), [])
        with self.assertRaises(NotFound):
            self.capa.service("py-no-such-service")
        self.capa.delete_service("py-svc")
        eventually(lambda: "py-svc" not in [s.name for s in self.capa.services()], "the service to be removed")


if __name__ == "__main__":
    unittest.main()
