// One WebSocket to a server's /ws, carrying the JSON protocol: one JSON object per text frame.
// Reconnects by itself with exponential back-off once asked to stay connected; the chat layer
// logs in again on every `open`. The first server is the page's own host and port; a cluster
// node lists its nodes' addresses in /config.json (`servers`), and an attempt that fails to
// connect moves on to the next of them (page origin first, then the list, round and round).

/** Delays before reconnect attempts 1, 2, 3 …, in ms; the last repeats. Jitter is added. */
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 10000];

/** The longest delay while a reached server refuses the login for a while (the name is still
 * held by the lost session, or on a cluster by a node that died, until its claim expires). */
const REFUSED_MAX_MS = 4000;

/** Most bytes the socket may hold unsent before file uploads pause (see `canSendBulk`). */
const BULK_HIGH_WATER = 256 * 1024;

/** Most servers kept from a server's list (a cluster has at most 16 nodes). */
const MAX_SERVERS = 32;

/** What a listed server must look like: `host:port` or `[v6]:port`, nothing else. */
const SERVER_RE = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?$/;

export class Connection {
  /**
   * handlers: onOpen(), onMessage(obj), onClose({code, reason, wasOpen}),
   * onStatus({state: 'connecting'|'online'|'waiting'|'offline', attempt, delayMs, server}).
   */
  constructor(handlers) {
    this.h = handlers;
    this.ws = null;
    /** True while the app wants a connection (after sign-in, until sign-out). */
    this.wanted = false;
    /** Failed attempts since the last successful open. */
    this.attempt = 0;
    this.timer = null;
    /** Servers to try, as `host:port`: the page's own first, then those a server listed. */
    this.servers = [location.host];
    /** The server of the current (or next) attempt; always one of `servers`. */
    this.server = location.host;
  }

  /** The socket's URL: ws: or wss: (as the page) to the current server. */
  url() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${scheme}//${this.server}/ws`;
  }

  /** A server listed its cluster's nodes (`servers` in /config.json): try them after the page's own. */
  setServers(list) {
    if (!Array.isArray(list)) return;
    const all = [location.host];
    for (const s of list) {
      if (typeof s !== 'string' || !SERVER_RE.test(s) || all.length >= MAX_SERVERS) continue;
      if (!all.some((a) => a.toLowerCase() === s.toLowerCase())) all.push(s);
    }
    if (!all.some((a) => a.toLowerCase() === this.server.toLowerCase())) all.push(this.server);
    this.servers = all;
  }

  /** Asks the page's own server for its list again (it may have gained nodes); a dead one is ignored. */
  async refreshServers() {
    try {
      const res = await fetch('config.json', { cache: 'no-store' });
      if (res.ok) this.setServers((await res.json()).servers);
    } catch {
      // the page's server is down: keep the list we have
    }
  }

  /** The next server after the current one, round the list. */
  rotate() {
    const i = this.servers.findIndex((s) => s.toLowerCase() === this.server.toLowerCase());
    this.server = this.servers[(i + 1) % this.servers.length];
  }

  /** Opens the socket now (and keeps reopening it after drops, with back-off, if `stay`). */
  open(stay) {
    this.wanted = stay;
    clearTimeout(this.timer);
    this.timer = null;
    if (this.ws) return;
    this.h.onStatus({ state: 'connecting', attempt: this.attempt, server: this.server });
    let ws;
    try {
      ws = new WebSocket(this.url());
    } catch (e) {
      this.closed({ code: 0, reason: String(e), wasOpen: false });
      return;
    }
    this.ws = ws;
    let wasOpen = false;
    ws.onopen = () => {
      wasOpen = true;
      this.h.onStatus({ state: 'online', attempt: this.attempt, server: this.server });
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
    // A server that was reached stays first in line (a refused login is retried there, and
    // a node that just died fails the next attempt fast); one that could not be reached
    // gives way to the next in the list.
    // A refused login keeps the back-off growing (to REFUSED_MAX_MS), so that the clients of
    // a node that died do not all knock every half second until its names are free.
    if (info.wasOpen && !info.refused) this.attempt = 0;
    else if (!info.wasOpen) this.rotate();
    let base = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    if (info.refused) base = Math.min(base, REFUSED_MAX_MS);
    const delayMs = Math.round(base * (0.8 + Math.random() * 0.4));
    this.attempt += 1;
    this.h.onStatus({ state: 'waiting', attempt: this.attempt, delayMs, server: this.server });
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

  /** Drops the socket now; with `retry` the usual back-off reconnect follows (`refused`: the
   * server refused the login for now, so the back-off does not start over). */
  drop(retry, refused = false) {
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
      this.closed({ code: 1000, reason: 'closed by the app', wasOpen, refused });
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
