// The WebSocket: connect, greet, and reconnect with exponential backoff and full jitter.

const BASE_DELAY = 500;
const MAX_DELAY = 30_000;
const HELLO_TIMEOUT = 15_000;

// Named close codes (RFC 6455). daphne lets the application send only 1000 and 3000-4999,
// so the server's own closes arrive as 4000 plus the RFC code; rfcCode() folds them back.
const CLOSE_GOING_AWAY = 1001;
const CLOSE_POLICY_VIOLATION = 1008;
const CLOSE_TOO_BIG = 1009;
const CLOSE_SERVICE_RESTART = 1012;
const CLOSE_TRY_AGAIN_LATER = 1013;

function rfcCode(code) {
  return code >= 4000 && code < 5000 ? code - 3000 : code;
}

/** Full jitter: a random delay between 0 and the capped exponential backoff. */
export function backoffDelay(attempt) {
  const ceiling = Math.min(MAX_DELAY, BASE_DELAY * 2 ** attempt);
  return Math.random() * ceiling;
}

/**
 * One logical connection that survives socket losses.
 * States reported through onState: "connecting", "online", "reconnecting" (with
 * `until`, a Date.now() timestamp) and "offline" (the browser has no network).
 */
export class Connection {
  constructor({ url, onFrame, onState, onOpen }) {
    this.url = url;
    this.onFrame = onFrame;
    this.onState = onState;
    this.onOpen = onOpen;
    this.ws = null;
    this.ready = false;
    this.attempt = 0;
    this.timer = null;
    this.helloTimer = null;
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
    window.addEventListener("pageshow", (event) => {
      if (event.persisted && !this.ws) this.open();
    });
    window.addEventListener("pagehide", (event) => {
      // Going into the back/forward cache: close cleanly, reopen on pageshow.
      if (event.persisted) this.drop();
    });
    if (navigator.onLine === false) this.setState("offline");
    else this.open();
  }

  setState(state, extra = {}) {
    this.state = state;
    this.onState(state, extra);
  }

  open() {
    clearTimeout(this.timer);
    this.timer = null;
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
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000);
  }

  goOffline() {
    clearTimeout(this.timer);
    this.timer = null;
    this.drop();
    this.setState("offline");
  }

  scheduleReconnect(closeCode) {
    const code = rfcCode(closeCode);
    if (navigator.onLine === false) {
      this.setState("offline");
      return;
    }
    if (code === CLOSE_POLICY_VIOLATION || code === CLOSE_TOO_BIG) {
      // Refused for cause: wait the longest before knocking again.
      this.attempt = Math.max(this.attempt, 6);
    } else if (code === CLOSE_TRY_AGAIN_LATER) {
      this.attempt = Math.max(this.attempt, 2);
    } else if (code === CLOSE_GOING_AWAY || code === CLOSE_SERVICE_RESTART) {
      // Another server will take us: come back soon, but spread out.
      this.attempt = Math.min(this.attempt, 1);
    }
    const delay = backoffDelay(this.attempt);
    this.attempt += 1;
    const until = Date.now() + delay;
    this.timer = setTimeout(() => this.open(), delay);
    this.setState("reconnecting", { until });
  }

  retryNow() {
    if (this.state === "reconnecting" || this.state === "offline") this.open();
  }

  /** Send a frame if the socket is greeted and open; false otherwise. */
  send(frame) {
    if (!this.ready || !this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }
}
