// One WebSocket to the server's /ws (same host and port as the page), carrying the JSON
// protocol: one JSON object per text frame. Reconnects by itself with exponential back-off
// once asked to stay connected; the chat layer logs in again on every `open`.

/** Delays before reconnect attempts 1, 2, 3 …, in ms; the last repeats. Jitter is added. */
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 10000];

/** Most bytes the socket may hold unsent before file uploads pause (see `canSendBulk`). */
const BULK_HIGH_WATER = 256 * 1024;

export class Connection {
  /**
   * handlers: onOpen(), onMessage(obj), onClose({code, reason, wasOpen}),
   * onStatus({state: 'connecting'|'online'|'waiting'|'offline', attempt, delayMs}).
   */
  constructor(handlers) {
    this.h = handlers;
    this.ws = null;
    /** True while the app wants a connection (after sign-in, until sign-out). */
    this.wanted = false;
    /** Failed attempts since the last successful open. */
    this.attempt = 0;
    this.timer = null;
  }

  /** The socket's URL: ws: or wss: to the page's own host and port. */
  static url() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${scheme}//${location.host}/ws`;
  }

  /** Opens the socket now (and keeps reopening it after drops, with back-off, if `stay`). */
  open(stay) {
    this.wanted = stay;
    clearTimeout(this.timer);
    this.timer = null;
    if (this.ws) return;
    this.h.onStatus({ state: 'connecting', attempt: this.attempt });
    let ws;
    try {
      ws = new WebSocket(Connection.url());
    } catch (e) {
      this.closed({ code: 0, reason: String(e), wasOpen: false });
      return;
    }
    this.ws = ws;
    let wasOpen = false;
    ws.onopen = () => {
      wasOpen = true;
      this.h.onStatus({ state: 'online', attempt: this.attempt });
      this.h.onOpen();
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data !== 'string') return; // binary frames are not ours
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return; // the server only sends JSON; ignore anything else
      }
      if (msg && typeof msg.type === 'string') this.h.onMessage(msg);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.closed({ code: ev.code, reason: ev.reason, wasOpen });
    };
  }

  /** The socket closed (or never opened): report it and schedule the next attempt if wanted. */
  closed(info) {
    this.h.onClose(info);
    if (!this.wanted) {
      this.h.onStatus({ state: 'offline', attempt: this.attempt });
      return;
    }
    if (info.wasOpen) this.attempt = 0;
    const base = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    const delayMs = Math.round(base * (0.8 + Math.random() * 0.4));
    this.attempt += 1;
    this.h.onStatus({ state: 'waiting', attempt: this.attempt, delayMs });
    this.timer = setTimeout(() => this.open(true), delayMs);
  }

  /** A successful login: the next drop starts the back-off from the beginning. */
  loggedIn() {
    this.attempt = 0;
  }

  /** Skips the rest of the current back-off wait. */
  retryNow() {
    if (this.wanted && !this.ws) this.open(true);
  }

  /** From now on, reconnect after every drop (called once logged in). */
  keep() {
    this.wanted = true;
  }

  /** Drops the socket now; with `retry` the usual back-off reconnect follows. */
  drop(retry) {
    this.wanted = retry;
    clearTimeout(this.timer);
    this.timer = null;
    const ws = this.ws;
    if (ws) {
      const wasOpen = ws.readyState === WebSocket.OPEN;
      this.ws = null;
      ws.onclose = null;
      ws.onmessage = null;
      ws.close(1000);
      this.closed({ code: 1000, reason: 'closed by the app', wasOpen });
    } else if (!retry) {
      this.h.onStatus({ state: 'offline', attempt: this.attempt });
    }
  }

  /** Sends one message; false when the socket is not open (nothing is queued). */
  send(obj) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(obj));
    return true;
  }

  /** True while bulk data (file chunks) may be queued without bloating the socket's buffer. */
  canSendBulk() {
    return !!this.ws && this.ws.readyState === WebSocket.OPEN && this.ws.bufferedAmount < BULK_HIGH_WATER;
  }

  /** True while the socket is open. */
  isOpen() {
    return !!this.ws && this.ws.readyState === WebSocket.OPEN;
  }
}
