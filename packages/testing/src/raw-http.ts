import { connect } from "node:net";

/**
 * Sends `head` on a raw TCP connection, then trickles `trickle` one byte every `everyMs`, and
 * resolves what the server answered once it closes the connection (or `giveUpMs` passed, with
 * `closed: false`): a client too slow to finish its request.
 */
export function trickleRequest(
  url: string,
  head: string,
  trickle: string,
  o: { everyMs: number; giveUpMs: number },
): Promise<{ response: string; closed: boolean; ms: number }> {
  const { hostname, port } = new URL(url);
  const t0 = performance.now();
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    let response = "";
    let i = 0;
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearInterval(drip);
      clearTimeout(giveUp);
      socket.destroy();
      resolve({ response, closed, ms: performance.now() - t0 });
    };
    const drip = setInterval(() => {
      if (i < trickle.length && socket.writable) socket.write(trickle[i++] as string);
    }, o.everyMs);
    const giveUp = setTimeout(() => finish(false), o.giveUpMs);
    socket.setEncoding("utf8");
    socket.on("data", (d: string) => {
      response += d;
    });
    socket.on("close", () => finish(true));
    socket.on("error", () => finish(true));
    socket.write(head);
  });
}
