// The WebSocket: connect, greet, and reconnect with exponential backoff and full jitter.

const BASE_DELAY = 500;
const MAX_DELAY = 30_000;
const HELLO_TIMEOUT = 15_000;

// RFC 6455's own codes, which browsers and proxies send.
const CLOSE_NORMAL = 1000;
const CLOSE_GOING_AWAY = 1001;

/**
 * The server's close codes, handed to the page by the server (chat/protocol.py).
 * @typedef {{policyViolation: number, tooBig: number, tryAgainLater: number, serviceRestart: number}} CloseCodes
 * @typedef {"connecting" | "online" | "reconnecting" | "offline"} ConnectionState
 * @typedef {{until?: number}} StateDetail
 */

/**
 * daphne lets an application send only 1000 and 3000-4999, so the server's own closes
 * arrive as 4000 plus the RFC code they stand for; this folds them back, so that either
 * form (from the server, or from a proxy in between) means the same.
 * @param {number | null} code
 */
export function rfcCode(code) {
  return code !== null && code >= 4000 && code < 5000 ? code - 3000 : code;
}

/**
 * Full jitter: a random delay between 0 and the capped exponential backoff.
 * @param {number} attempt
 * @param {() => number} [random]
 */
export function backoffDelay(attempt, random = Math.random) {
  const ceiling = Math.min(MAX_DELAY, BASE_DELAY * 2 ** attempt);
  return random() * ceiling;
}

/**
 * The backoff attempt to continue from after a close with `code`: refused for cause waits
 * the longest, "try again later" a while, a worker going away only a little.
 * @param {number} attempt
 * @param {number | null} code the close code (null: the socket never opened)
 * @param {CloseCodes} codes
 */
export function attemptAfterClose(attempt, code, codes) {
  const rfc = rfcCode(code);
  if (rfc === null) return attempt;
  if (rfc === rfcCode(codes.policyViolation) || rfc === rfcCode(codes.tooBig)) return Math.max(attempt, 6);
  if (rfc === rfcCode(codes.tryAgainLater)) return Math.max(attempt, 2);
  // Another server will take us: come back soon, but spread out.
  if (rfc === CLOSE_GOING_AWAY || rfc === rfcCode(codes.serviceRestart)) return Math.min(attempt, 1);
  return attempt;
}

/**
 * One logical connection that survives socket losses.
 * States reported through onState: "connecting", "online", "reconnecting" (with
 * `until`, a Date.now() timestamp) and "offline" (the browser has no network).
 */
export class Connection {
  /**
   * @param {object} options
   * @param {() => string} options.url the socket's URL, asked afresh for each connect
   * @param {CloseCodes} options.closeCodes
   * @param {(frame: Record<string, unknown>) => void} options.onFrame
   * @param {(state: ConnectionState, detail: StateDetail) => void} options.onState
   * @param {() => void} [options.onOpen] after the `hello` frame was handled
   */
  constructor({ url, closeCodes, onFrame, onState, onOpen }) {
    this.url = url;
    this.closeCodes = closeCodes;
    this.onFrame = onFrame;
    this.onState = onState;
    this.onOpen = onOpen;
    /** @type {WebSocket | null} */
    this.ws = null;
    this.ready = false;
    this.attempt = 0;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.timer = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.helloTimer = undefined;
    /** @type {ConnectionState | null} */
    this.state = null;
  }

  start() {
    window.addEventListener("offline", () => this.goOffline());
    window.addEventListener("online", () => {
      if (this.state === "offline" || this.state === "reconnecting") this.open();
    });
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && this.state === "reconnecting") this.open();
    });
    window.addEventListener("pageshow", (/** @type {PageTransitionEvent} */ event) => {
      if (event.persisted && !this.ws) this.open();
    });
    window.addEventListener("pagehide", (/** @type {PageTransitionEvent} */ event) => {
      // Going into the back/forward cache: close cleanly, reopen on pageshow.
      if (event.persisted) this.drop();
    });
    if (navigator.onLine === false) this.setState("offline");
    else this.open();
  }

  /**
   * @param {ConnectionState} state
   * @param {StateDetail} [extra]
   */
  setState(state, extra = {}) {
    this.state = state;
    this.onState(state, extra);
  }

  open() {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.drop();
    this.setState("connecting");
    let ws;
    try {
      ws = new WebSocket(this.url());
    } catch {
      this.scheduleReconnect(null);
      return;
    }
    this.ws = ws;
    this.helloTimer = setTimeout(() => {
      if (this.ws === ws && !this.ready) ws.close();
    }, HELLO_TIMEOUT);
    ws.addEventListener("message", (event) => {
      if (this.ws !== ws || typeof event.data !== "string") return;
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (!frame || typeof frame !== "object") return;
      if (frame.type === "hello") {
        clearTimeout(this.helloTimer);
        this.ready = true;
        this.attempt = 0;
        this.setState("online");
      }
      this.onFrame(frame);
      if (frame.type === "hello") this.onOpen?.();
    });
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.ready = false;
      clearTimeout(this.helloTimer);
      this.scheduleReconnect(event.code);
    });
  }

  /** Forget the current socket without reacting to its close. */
  drop() {
    const ws = this.ws;
    this.ws = null;
    this.ready = false;
    clearTimeout(this.helloTimer);
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(CLOSE_NORMAL);
  }

  goOffline() {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.drop();
    this.setState("offline");
  }

  /** @param {number | null} closeCode */
  scheduleReconnect(closeCode) {
    if (navigator.onLine === false) {
      this.setState("offline");
      return;
    }
    this.attempt = attemptAfterClose(this.attempt, closeCode, this.closeCodes);
    const delay = backoffDelay(this.attempt);
    this.attempt += 1;
    const until = Date.now() + delay;
    this.timer = setTimeout(() => this.open(), delay);
    this.setState("reconnecting", { until });
  }

  retryNow() {
    if (this.state === "reconnecting" || this.state === "offline") this.open();
  }

  /**
   * Send a frame if the socket is greeted and open; false otherwise.
   * @param {object} frame
   */
  send(frame) {
    if (!this.ready || !this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }
}
