/**
 * Region globs for the order book (`eu-*`, `*-west`, `us-?ast`): `*` matches any run of characters (dashes
 * included), `?` exactly one; everything else is literal. Matching ignores case because region names are
 * lowercase by convention but typed by people.
 */
export function globToRegExp(glob: string): RegExp {
  let pattern = "";
  for (const ch of glob) {
    if (ch === "*") pattern += ".*";
    else if (ch === "?") pattern += ".";
    else pattern += ch.replace(/[\\^$.|+()[\]{}]/g, "\\$&");
  }
  return new RegExp(`^${pattern}$`, "i");
}

/** An empty glob matches everything. */
export function regionMatcher(glob: string | undefined): (region: string) => boolean {
  if (!glob) return () => true;
  const re = globToRegExp(glob);
  return (region) => re.test(region);
}
