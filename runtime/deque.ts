/**
 * Deque: a growable ring buffer, O(1) at both ends. The scheduler's waiting queue: requests join
 * at the back (FCFS) and preempted requests go back in at the front.
 */
export class Deque<T> {
  private buf: (T | undefined)[] = new Array(16);
  private head = 0;
  length = 0;
  peek(): T | undefined { return this.buf[this.head]; }
  at(i: number): T { return this.buf[(this.head + i) % this.buf.length] as T; }
  pushBack(x: T): void { this.grow(); this.buf[(this.head + this.length++) % this.buf.length] = x; }
  pushFront(x: T): void { this.grow(); this.head = (this.head - 1 + this.buf.length) % this.buf.length; this.buf[this.head] = x; this.length++; }
  shift(): T | undefined {
    if (this.length === 0) return undefined;
    const x = this.buf[this.head];
    this.buf[this.head] = undefined;
    this.head = (this.head + 1) % this.buf.length;
    this.length--;
    return x;
  }
  remove(x: T): boolean {
    const items: T[] = [];
    let found = false;
    while (this.length > 0) { const y = this.shift() as T; if (y === x && !found) found = true; else items.push(y); }
    for (const y of items) this.pushBack(y);
    return found;
  }
  private grow(): void {
    if (this.length < this.buf.length) return;
    const b: (T | undefined)[] = new Array(this.buf.length * 2);
    for (let i = 0; i < this.length; i++) b[i] = this.at(i);
    this.buf = b;
    this.head = 0;
  }
}
