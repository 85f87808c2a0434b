import { randomUUID } from 'node:crypto';
import { buildRecordingMessages } from '../../src/capture/build-messages.ts';
import { compressLz4Frame } from '../../src/codec/lz4-frames.ts';
import { topicNames } from '../../src/kafka/topics.ts';
import { encodeRecordingMessage } from '../../src/recordings/message-codec.ts';
import type { Team } from '../../src/teams/team-store.ts';
import { sampleRrwebEvents } from '../../test/support/capture.ts';
import { headerOf, produceAll, readTopic } from '../../test/support/kafka.ts';
import { sampleHeader } from '../../test/support/recordings.ts';
import { poisonEvents, type Traffic } from './traffic.ts';

/**
 * Recordings messages that can never succeed, written straight onto the topic (as a broken producer would): one
 * whose header breaks a bound, and a damaged copy of a message of `sessionId`, a session the traffic records.
 */
function forgedMessages(team: Team, sessionId: string, t: number) {
  const keyOf = (name: string) => `chaos-poison-${name}-${randomUUID()}`;
  const headerInvalid = {
    topic: topicNames.recordings,
    key: keyOf('header'),
    value: encodeRecordingMessage(
      sampleHeader({ teamId: team.id, sessionId: randomUUID(), firstTimestamp: -1 }),
      compressLz4Frame(Buffer.from(`["w1",${JSON.stringify({ type: 3, timestamp: t, data: { source: 1 } })}]\n`)),
    ),
  };
  const [message] = buildRecordingMessages(
    {
      team,
      sessionId,
      distinctId: 'poison',
      snapshotSource: 'web',
      snapshotLibrary: 'web',
      // Later than the session's own events, so that they are told apart should the damage ever go unnoticed.
      events: sampleRrwebEvents(t + 100_000).map((event) => ({ windowId: 'w1', event: event as never })),
    },
    { maxMessageBytes: 1 << 20, requestId: randomUUID(), capturedAt: Date.now() },
  );
  const damaged = Buffer.from(message!.value);
  damaged[damaged.length - 12]! ^= 0x5a; // inside the LZ4 data, after the envelope header
  return [headerInvalid, { topic: topicNames.recordings, key: keyOf('lz4'), value: damaged }];
}

/**
 * Poison inputs mixed into a team's good traffic, every way they arrive: invalid events inside a good batch (capture
 * keeps the rest), a batch capture must refuse whole, invalid behaviours beside valid ones, and undecodable messages
 * on the recordings topic (the blob consumer must quarantine them and go on).
 */
export class PoisonSender {
  private readonly brokers: string;
  private readonly team: Team;
  private readonly traffic: Traffic;
  private readonly forgedKeys: string[] = [];

  constructor(brokers: string, team: Team, traffic: Traffic) {
    this.brokers = brokers;
    this.team = team;
    this.traffic = traffic;
  }

  /** Messages forged onto the topic so far. */
  get forged(): number {
    return this.forgedKeys.length;
  }

  /** One round of every kind of poison. */
  async send(): Promise<void> {
    const t = Date.now() - 3_600_000;
    const sessionId = randomUUID();
    await Promise.all([
      this.traffic.upload(sessionId, sampleRrwebEvents(t), poisonEvents(t)),
      this.traffic.upload(randomUUID(), [], sampleRrwebEvents(t), { distinct_id: 'd'.repeat(201) }),
      this.traffic.behave(sessionId, 2, true),
      (async () => {
        const forged = forgedMessages(this.team, sessionId, t);
        this.forgedKeys.push(...forged.map((m) => m.key));
        await produceAll(this.brokers, forged);
      })(),
    ]);
  }

  /**
   * How many of the forged messages reached the recordings DLQ with a reason code, out of how many were sent, and
   * the kinds of those that did not.
   */
  async quarantined(timeoutMs: number): Promise<{ sent: number; quarantined: number; missing: string[] }> {
    const wanted = new Set(this.forgedKeys);
    const found = (messages: Awaited<ReturnType<typeof readTopic>>) =>
      new Set(
        messages
          .filter((m) => wanted.has(m.key?.toString() ?? '') && headerOf(m, 'dlq_reason'))
          .map((m) => m.key!.toString()),
      );
    const dlq = await readTopic(this.brokers, topicNames.recordingsDlq, {
      done: (messages) => found(messages).size === wanted.size,
      timeoutMs,
    });
    const quarantined = found(dlq);
    const missing = [...wanted].filter((key) => !quarantined.has(key)).map((key) => key.split('-')[2]!);
    return { sent: wanted.size, quarantined: quarantined.size, missing };
  }
}
