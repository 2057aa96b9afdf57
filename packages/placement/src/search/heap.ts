/** A binary max-heap keyed by a number; ties pop in insertion order of their `order` field (deterministic). */
export class MaxHeap<T> {
  private readonly items: Array<{ key: number; order: number; value: T }> = [];
  private counter = 0;

  get size(): number {
    return this.items.length;
  }

  peekKey(): number {
    return this.items[0]?.key ?? Number.NEGATIVE_INFINITY;
  }

  push(key: number, value: T): void {
    const items = this.items;
    items.push({ key, order: this.counter++, value });
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.above(i, parent)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  pop(): T | undefined {
    const items = this.items;
    const top = items[0];
    if (!top) return undefined;
    const last = items.pop()!;
    if (items.length > 0) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < items.length && this.above(l, m)) m = l;
        if (r < items.length && this.above(r, m)) m = r;
        if (m === i) break;
        [items[i], items[m]] = [items[m]!, items[i]!];
        i = m;
      }
    }
    return top.value;
  }

  private above(a: number, b: number): boolean {
    const x = this.items[a]!;
    const y = this.items[b]!;
    return x.key > y.key || (x.key === y.key && x.order < y.order);
  }
}
