/**
 * The security suites' scoreboard: each attack is tried one or more times and every try is recorded as denied
 * (the system refused it), leaked (it read or changed something it must not) or allowed (it went through, which
 * a suite only accepts for the control rows it marks as expected). The gRPC and NATS suites print one table each,
 * in the same shape, so the note can paste them side by side.
 */
export type AttackOutcome = "denied" | "leaked" | "allowed";

export interface AttackRow {
  attack: string;
  tried: number;
  denied: number;
  leaked: number;
  /** Tries that went through although the row expects them to be denied. */
  unexpectedAllows: number;
}

export class AttackTable {
  private readonly rows = new Map<string, AttackRow>();

  /** Records one try of `attack`. */
  record(attack: string, outcome: AttackOutcome): void {
    let row = this.rows.get(attack);
    if (!row) {
      row = { attack, tried: 0, denied: 0, leaked: 0, unexpectedAllows: 0 };
      this.rows.set(attack, row);
    }
    row.tried += 1;
    if (outcome === "denied") row.denied += 1;
    else if (outcome === "leaked") row.leaked += 1;
    else row.unexpectedAllows += 1;
  }

  list(): AttackRow[] {
    return [...this.rows.values()];
  }

  /** Tries that leaked or were allowed, over all rows: a passing suite has 0. */
  failures(): number {
    let n = 0;
    for (const row of this.rows.values()) n += row.leaked + row.unexpectedAllows;
    return n;
  }

  /** The table as fixed-width text, one row per attack plus a total line. */
  render(title: string): string {
    const rows = this.list();
    const width = Math.max(6, ...rows.map((r) => r.attack.length));
    const line = (a: string, t: string, d: string, l: string, u: string) =>
      `${a.padEnd(width)}  ${t.padStart(5)}  ${d.padStart(6)}  ${l.padStart(6)}  ${u.padStart(17)}`;
    const total = rows.reduce(
      (acc, r) => ({
        tried: acc.tried + r.tried,
        denied: acc.denied + r.denied,
        leaked: acc.leaked + r.leaked,
        unexpectedAllows: acc.unexpectedAllows + r.unexpectedAllows,
      }),
      { tried: 0, denied: 0, leaked: 0, unexpectedAllows: 0 },
    );
    return [
      title,
      line("ATTACK", "TRIED", "DENIED", "LEAKED", "UNEXPECTED ALLOWS"),
      ...rows.map((r) => line(r.attack, `${r.tried}`, `${r.denied}`, `${r.leaked}`, `${r.unexpectedAllows}`)),
      line("TOTAL", `${total.tried}`, `${total.denied}`, `${total.leaked}`, `${total.unexpectedAllows}`),
    ].join("\n");
  }
}
