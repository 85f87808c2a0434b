import { connect, createServer, type Server, type Socket } from 'node:net';

/** Kafka API key of EndTxn: the request that commits or aborts a transaction. */
export const END_TXN = 26;

/**
 * A TCP proxy in front of the broker's proxied listener that reads the Kafka protocol's frames (a 4-byte size, then
 * for requests the API key and correlation id; for responses the correlation id) and can lose the answers to one kind
 * of request: the request reaches the broker and takes effect, the client never hears back, and its connection drops
 * (what a network failure at the wrong moment does). Everything else is forwarded untouched.
 */
export async function startKafkaFaultProxy(listen: string, upstream: string) {
  const [listenHost, listenPort] = listen.split(':') as [string, string];
  const [upHost, upPort] = upstream.split(':') as [string, string];
  let loseUntil = 0;
  let lostApiKey = -1;
  let lost = 0;
  const sockets = new Set<Socket>();

  /** Calls `onFrame` for each whole frame as bytes arrive; returns the feeder. */
  const framer = (onFrame: (frame: Buffer) => void) => {
    let pending: Buffer = Buffer.alloc(0);
    return (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= 4) {
        const size = pending.readInt32BE(0);
        if (pending.length < 4 + size) break;
        onFrame(pending.subarray(0, 4 + size));
        pending = pending.subarray(4 + size);
      }
    };
  };

  const server: Server = createServer((client) => {
    const broker = connect(Number(upPort), upHost);
    sockets.add(client).add(broker);
    const close = () => {
      client.destroy();
      broker.destroy();
      sockets.delete(client);
      sockets.delete(broker);
    };
    client.on('error', close).on('close', close);
    broker.on('error', close).on('close', close);
    const apiKeyOf = new Map<number, number>();
    client.on(
      'data',
      framer((frame) => {
        apiKeyOf.set(frame.readInt32BE(8), frame.readInt16BE(4));
        broker.write(frame);
      }),
    );
    broker.on(
      'data',
      framer((frame) => {
        const correlation = frame.readInt32BE(4);
        const apiKey = apiKeyOf.get(correlation);
        apiKeyOf.delete(correlation);
        if (apiKey === lostApiKey && Date.now() < loseUntil) {
          lost++;
          close();
          return;
        }
        client.write(frame);
      }),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(listenPort), listenHost, () => resolve());
  });
  return {
    /** Loses every answer to requests of `apiKey` for the next `ms` milliseconds. */
    loseAnswers(apiKey: number, ms: number) {
      lostApiKey = apiKey;
      loseUntil = Date.now() + ms;
    },
    get lost() {
      return lost;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
