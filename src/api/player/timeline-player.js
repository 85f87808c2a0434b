// Plays every window of a session as one timeline (a module of the player page; plain JavaScript, as the browser runs
// it). One clock, and one rrweb replayer at a time over the events of the window the timeline shows at the clock's
// time. Every seek, and every switch of window, draws a fresh replayer at the clock's time (rrweb rebuilds from the
// window's nearest full snapshot): no event is ever duplicated, a switch costs what a seek costs, and no replayer is
// reused after a seek (rrweb 2.1's forward seek after playing over a batch of mouse moves re-applies the mutations
// that batch overlapped, which doubled text). The clock runs to the end of the session even when the shown window
// has no more events (an idle tab).
import { skipInactive, windowAt } from './session-timeline.js';

/** How far the shown replayer may fall behind the clock before it is drawn afresh at the clock's time. */
const MAX_REPLAYER_LAG_MS = 500;

export class TimelinePlayer {
  /**
   * @param container where the shown window's view goes
   * @param timeline sessionTimeline(...) of the session
   * @param options {width, height, onChange(offsetMs, playing)}
   */
  constructor(container, timeline, options) {
    this.container = container;
    this.timeline = timeline;
    this.options = options;
    this.clock = timeline.start;
    this.playing = false;
    this.speed = 1;
    this.skipping = true;
    /** The view on show: {windowId, element, player, start}. */
    this.current = undefined;
    this.frame = 0;
    this.lastTick = 0;
    this.destroyed = false;
  }

  /** Milliseconds from the start of the timeline to the clock. */
  get offset() {
    return this.clock - this.timeline.start;
  }

  /** The window on show. */
  get shown() {
    return this.current?.windowId;
  }

  /** A replayer over one window's events, in a view of its own. */
  createView(windowId) {
    const events = this.timeline.streams[windowId];
    const element = document.createElement('div');
    element.className = 'window-view';
    element.dataset.window = windowId;
    this.container.appendChild(element);
    // The UMD build exposes the component as the global's default export.
    const Player = window.rrwebPlayer.default || window.rrwebPlayer;
    const player = new Player({
      target: element,
      props: {
        events,
        width: this.options.width,
        height: this.options.height,
        autoPlay: false,
        showController: false,
        // Skipping is the timeline's (the summary's activity rule), not the replayer's own.
        skipInactive: false,
        speed: this.speed,
      },
    });
    return { windowId, element, player, start: events[0].timestamp };
  }

  dropView() {
    if (!this.current) return;
    this.current.player.$destroy();
    this.current.element.remove();
    this.current = undefined;
  }

  /** Moves the clock to `timestamp` (clamped to the session) and draws the window of that moment there. */
  seek(timestamp, play = this.playing) {
    if (this.destroyed || !Number.isFinite(timestamp)) return;
    this.clock = Math.min(Math.max(timestamp, this.timeline.start), this.timeline.end);
    this.dropView();
    try {
      this.current = this.createView(windowAt(this.timeline.segments, this.clock));
      // rrweb draws the events before the offset it is given: one millisecond more, so the event at exactly this
      // moment (a page load's Meta and snapshot, the input an entry names) is drawn too.
      this.current.player.goto(Math.max(0, this.clock - this.current.start) + 1, play);
    } catch (error) {
      // rrweb throws over some malformed recordings (a document without a head): what could be drawn stays drawn,
      // and the clock goes on.
      console.warn('the replayer could not draw this moment of the recording', error);
    }
    this.setPlaying(play);
  }

  play() {
    const atEnd = this.clock >= this.timeline.end;
    this.seek(atEnd ? this.timeline.start : this.clock, true);
  }

  pause() {
    this.current?.player.pause();
    this.setPlaying(false);
  }

  toggle() {
    if (this.playing) this.pause();
    else this.play();
  }

  /** Later replayers take the speed when they are made; a running one is replaced (rrweb's own change is a seek). */
  setSpeed(speed) {
    this.speed = speed;
    if (this.playing) this.seek(this.clock, true);
  }

  setSkipping(skipping) {
    this.skipping = skipping;
  }

  setPlaying(playing) {
    this.playing = playing;
    cancelAnimationFrame(this.frame);
    if (playing) {
      this.lastTick = performance.now();
      this.frame = requestAnimationFrame(() => this.tick());
    }
    this.options.onChange(this.offset, this.playing);
  }

  /** The shown replayer's lag behind the clock, in ms (0 once it has played all of its window's events). */
  replayerLag() {
    const player = this.current?.player;
    if (!player) return 0;
    const played = player.getReplayer().getCurrentTime();
    const expected = this.clock - this.current.start;
    return played >= player.getMetaData().totalTime ? 0 : expected - played;
  }

  tick() {
    // One time source: a frame's own timestamp can be older than the last seek's.
    const now = performance.now();
    const next = this.clock + Math.max(0, now - this.lastTick) * this.speed;
    this.lastTick = now;
    if (next >= this.timeline.end) {
      this.clock = this.timeline.end;
      this.pause();
      return;
    }
    const target = this.skipping
      ? skipInactive(this.timeline.active, next, this.timeline.start, this.timeline.end)
      : next;
    if (target >= this.timeline.end) {
      this.seek(this.timeline.end, false);
      return;
    }
    // A skip, the user going to another window, or a replayer that stopped on its own (rrweb waits for stylesheets
    // and fonts) and fell behind the clock: drawn afresh at the clock's time.
    const behind = Math.abs(this.replayerLag()) > MAX_REPLAYER_LAG_MS;
    if (target !== next || windowAt(this.timeline.segments, target) !== this.shown || behind) {
      this.seek(target, true);
      return;
    }
    this.clock = next;
    this.options.onChange(this.offset, true);
    this.frame = requestAnimationFrame(() => this.tick());
  }

  destroy() {
    this.destroyed = true;
    cancelAnimationFrame(this.frame);
    this.playing = false;
    this.dropView();
  }
}
