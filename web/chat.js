// The chat session: signing in, the conversations (rooms and private messages), what each server
// message does to them, and the `/` commands. Rendering goes through ui.js and view.js.

import { Connection } from './connection.js';
import { HELP, MAX_USER, nameProblem, parseLine } from './commands.js';
import { Files } from './files.js';
import { $, renderItem, updateItem } from './view.js';
import { Ui } from './ui.js';
import { HANDLERS, sameName } from './incoming.js';

/** Items kept per conversation; older ones are dropped from memory and from the page. */
const MAX_ITEMS = 1000;
/** Dedupe keys remembered per conversation (more than MAX_ITEMS: history may be re-sent). */
const MAX_SEEN = 4000;
/** Longest message text the server takes, in bytes of UTF-8. */
const MAX_TEXT = 8192;
/** Times a login refused with USERNAME_TAKEN is retried after a reload or reconnect: the
 * server may not have seen the old connection close yet. */
const TAKEN_RETRIES = 6;

/** Where the page keeps who it was (name and room, never a credential) across reloads. */
const SESSION_KEY = 'chatproto.session';

/** Friendly words for LOGIN_REJECT codes (the server's reason is shown after them). */
const REJECT = {
  11: 'That name cannot be used.',
  12: 'That name is taken: someone online has it (or an account with it exists). Pick another.',
  16: 'Too many sign-in attempts. Wait a little and try again.',
  19: 'The server did not accept the passkey or password.',
};

export class Chat {
  constructor() {
    this.conn = new Connection({
      onOpen: () => this.onOpen(),
      onMessage: (m) => this.onMessage(m),
      onClose: (i) => this.onClose(i),
      onStatus: (s) => this.ui.status(s, this.everLoggedIn),
    });
    this.files = new Files(this);
    this.ui = new Ui(this);
    this.resetSession();
  }

  /** Forgets everything about the signed-in user. */
  resetSession() {
    this.me = null;
    this.secret = '';
    this.register = false;
    /** signed-out | signing-in | chatting */
    this.phase = 'signed-out';
    /** A login succeeded on this page: drops reconnect instead of returning to sign-in. */
    this.everLoggedIn = false;
    /** Retries left for a login refused as taken (after a reload or reconnect). */
    this.takenRetries = 0;
    /** The room the server has us in, and the one to return to after a reconnect. */
    this.room = null;
    this.wantRoom = null;
    this.rooms = [];
    this.members = [];
    /** key → {key, kind: 'room'|'dm', name, items, seen, unread, divider, last} */
    this.convs = new Map();
    this.active = null;
    /** Own room messages waiting for ROOM_MSG_ACK, oldest first. */
    this.pending = [];
    this.adminProbe = false;
    this.isAdmin = false;
    /** Set when we drop the socket ourselves to retry a refused login after a back-off. */
    this.retrying = false;
    /** Set by a drop; the next LOGIN_ACK says "reconnected". */
    this.outage = false;
    /** Set by /users, /rooms, /files: print the next answer in the conversation too. */
    this.echo = { users: false, rooms: false, files: false };
    /** Scroll-back (the resume extension): false once the server said it has none. */
    this.scrollback = null;
    /** A scroll-back page being received: {room, items}, or null. */
    this.backfill = null;
  }

  // ----- signing in and out -----

  /** Starts a sign-in (or account registration) as `name`; `auto` after a page reload. */
  signIn(name, secret, register, auto = false) {
    const problem = nameProblem(name, MAX_USER);
    if (problem) {
      this.ui.signinError(`That name cannot be used: ${problem}.`);
      return;
    }
    this.me = name;
    this.secret = secret;
    this.register = register;
    this.phase = 'signing-in';
    this.takenRetries = auto ? TAKEN_RETRIES : 0;
    this.ui.signinBusy(register ? 'Creating the account…' : 'Signing in…');
    if (this.conn.isOpen()) this.sendLogin();
    else this.conn.open(false);
  }

  /** Tries the session saved before a reload (open servers only: no credential is saved). */
  resume() {
    let saved = null;
    try {
      saved = JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null');
    } catch {
      saved = null;
    }
    if (!saved || typeof saved.name !== 'string') return false;
    $('signin-name').value = saved.name;
    this.wantRoom = typeof saved.room === 'string' ? saved.room : null;
    this.signIn(saved.name, '', false, true);
    return true;
  }

  saveSession() {
    if (this.secret) return;
    try {
      sessionStorage.setItem(SESSION_KEY, JSON.stringify({ name: this.me, room: this.wantRoom }));
    } catch {
      // storage may be off; the page still works, it just asks again after a reload
    }
  }

  signOut() {
    this.conn.drop(false);
    this.files.reset('signed out');
    try {
      sessionStorage.removeItem(SESSION_KEY);
    } catch {
      // nothing saved
    }
    this.resetSession();
    this.ui.showSignin();
  }

  onOpen() {
    if (this.phase === 'signed-out') {
      this.conn.drop(false);
      return;
    }
    this.sendLogin();
  }

  sendLogin() {
    const msg = { type: this.register ? 'register' : 'login', username: this.me };
    if (this.secret || this.register) msg.credential = this.secret;
    // Resume: only what came after the last message seen in general (where a login lands).
    // A server without the resume extension ignores the key and replays as usual (deduped).
    const since = this.since('general');
    if (since && !this.register) msg.since = since;
    this.lastError = { code: 0, text: '' };
    this.send(msg);
  }

  /** The largest message id seen in `room`, or 0. */
  since(room) {
    const conv = this.convs.get(`r:${room}`);
    return conv ? conv.lastId : 0;
  }

  /** JOIN_ROOM, resuming after the last message seen there if we were there before. */
  joinRoom(room) {
    const since = this.since(room);
    this.send(since ? { type: 'join_room', room, since } : { type: 'join_room', room });
  }

  onClose(info) {
    this.pending.forEach((it) => this.failItem(it, 'the connection was lost'));
    this.pending = [];
    this.files.reset('the connection was lost');
    this.adminProbe = false;
    const last = this.lastError || { code: 0, text: '' };
    if (this.retrying) {
      // A login refused for a while (name still held, too many attempts): the back-off retries.
      this.retrying = false;
      return;
    }
    if (this.phase === 'chatting' && (last.code === 22 || last.code === 24)) {
      // Kicked (or banned) by an administrator: coming straight back would defeat the point.
      this.signOut();
      this.ui.signinError(`An administrator disconnected you: ${last.text}`);
      return;
    }
    if (this.phase === 'chatting' || (this.phase === 'signing-in' && this.everLoggedIn)) {
      if (!this.outage) this.notice('Connection lost. Reconnecting…', 'error');
      this.outage = true;
      this.phase = 'signing-in';
      return;
    }
    if (this.phase === 'signing-in') {
      this.phase = 'signed-out';
      this.ui.signinError(info.wasOpen ? `The server closed the connection${last.text ? `: ${last.text}` : '.'}`
        : `Cannot reach the chat server at ${this.conn.server}. Is it running? Try again in a moment.`);
    }
    this.lastError = { code: 0, text: '' };
  }

  onLoginAck(msg) {
    const first = !this.everLoggedIn;
    this.everLoggedIn = true;
    this.phase = 'chatting';
    this.register = false;
    this.me = msg.username;
    this.room = msg.room;
    this.conn.keep();
    this.conn.loggedIn();
    this.ui.showApp(this.me);
    this.ui.status({ state: 'online', attempt: 0, server: this.conn.server }, true);
    this.conn.refreshServers();
    const conv = this.conv('room', msg.room);
    conv.divider = true;
    const rejoin = this.wantRoom && this.wantRoom !== msg.room;
    if (!this.active || (!rejoin && this.convs.get(this.active).kind === 'room')) this.activate(conv.key);
    if (this.outage) this.notice('Reconnected.', 'info');
    else if (first) this.notice(`Signed in as ${this.me}. Type /help for commands.`, 'info');
    this.outage = false;
    if (rejoin) {
      this.joinRoom(this.wantRoom);
    } else {
      this.wantRoom = msg.room;
      this.enteredRoom();
    }
    this.saveSession();
    this.adminProbe = true;
    this.send({ type: 'admin', text: 'help' });
  }

  onLoginReject(msg) {
    const code = msg.code;
    const reason = typeof msg.reason === 'string' ? msg.reason : '';
    if (code === 12 && (this.everLoggedIn || this.takenRetries > 0)) {
      // After a reload or a drop the server may still hold the old session (until it notices
      // the old connection is gone): try again, with the usual back-off.
      this.takenRetries = Math.max(0, this.takenRetries - 1);
      if (!this.everLoggedIn) this.ui.signinBusy('Waiting for the previous session to end…');
      this.retrying = true;
      this.conn.drop(true, true);
      return;
    }
    if (this.everLoggedIn && code === 16) {
      this.retrying = true;
      this.conn.drop(true, true);
      return;
    }
    let text = REJECT[code] || 'The server refused the sign-in.';
    if (code === 24) {
      const mins = Math.ceil((Number(msg.retry_ms) || 0) / 60000);
      text = mins ? `This name is banned for about ${mins} more minute${mins === 1 ? '' : 's'}.` : 'This name is banned.';
    }
    if (code === 19 && !this.secret && !this.register) {
      text = 'This server asks for a passkey or a password: enter it and sign in again.';
    } else if (code === 19 && this.register) {
      text = 'This server does not take new accounts: sign in with your name (and its passkey, if it has one).';
    }
    const wasChatting = this.everLoggedIn;
    if (wasChatting) this.signOut();
    this.phase = 'signed-out';
    this.ui.signinError(`${text}${reason ? ` (${reason})` : ''}`);
    $(code === 19 ? 'signin-secret' : 'signin-name').focus();
  }

  // ----- conversations -----

  /** The conversation for a room or a person, created if new. */
  conv(kind, name) {
    const key = kind === 'room' ? `r:${name}` : `u:${name.toLowerCase()}`;
    let c = this.convs.get(key);
    if (!c) {
      c = { key, kind, name, items: [], seen: new Set(), unread: 0, divider: false, last: 0, lastId: 0 };
      this.convs.set(key, c);
    }
    return c;
  }

  /** Shows conversation `key`. */
  activate(key) {
    const conv = this.convs.get(key);
    if (!conv) return;
    this.active = key;
    conv.unread = 0;
    this.ui.showConversation(conv, (item) => renderItem(item, this.itemHandlers()));
    this.ui.renderLists();
  }

  itemHandlers() {
    return { onUser: (name) => this.openDm(name), onDownload: (id) => this.files.get(id) };
  }

  /** Opens (and shows) the private conversation with `name`. */
  openDm(name) {
    if (sameName(name, this.me)) return;
    this.activate(this.conv('dm', name).key);
    $('input').focus();
  }

  /** Asks for the page of room messages before the oldest one shown (HISTORY). */
  loadOlder() {
    const conv = this.room && this.convs.get(`r:${this.room}`);
    if (!conv || this.backfill || !this.conn.isOpen()) return;
    const ids = conv.items.filter((i) => i.type === 'msg' && i.id !== undefined).map((i) => Number(i.id));
    this.backfill = { room: this.room, items: [] };
    this.send({ type: 'history', before: ids.length ? Math.min(...ids) : 0 });
  }

  /** A scroll-back page arrived: its messages go above the ones shown, the view stays put. */
  prepend(conv, items) {
    conv.items.unshift(...items);
    if (this.active !== conv.key || !items.length) return;
    const list = $('messages');
    const height = list.scrollHeight;
    list.prepend(...items.map((item) => renderItem(item, this.itemHandlers())));
    list.scrollTop += list.scrollHeight - height;
  }

  /** Adds `item` to `conv`; counts it as unread unless it is seen now, history or our own. */
  add(conv, item, countUnread) {
    item.ts = item.ts || Date.now();
    conv.items.push(item);
    conv.last = Date.now();
    const shown = this.active === conv.key;
    if (shown) this.ui.append(renderItem(item, this.itemHandlers()));
    if (conv.items.length > MAX_ITEMS) {
      const old = conv.items.shift();
      if (old.node) old.node.remove();
    }
    if (countUnread && (!shown || document.hidden)) conv.unread += 1;
    this.ui.renderLists();
  }

  /** A notice in the conversation on screen (or `conv`). */
  notice(text, cls = 'info', conv = null, pre = false, data = null) {
    const c = conv || (this.active && this.convs.get(this.active));
    if (!c) return;
    this.add(c, { type: 'notice', text, cls, pre, data }, false);
  }

  failItem(item, why) {
    item.state = 'failed';
    item.error = why;
    updateItem(item);
  }

  /** Remembers a dedupe key; false if it was already there. */
  remember(conv, key) {
    if (conv.seen.has(key)) return false;
    conv.seen.add(key);
    if (conv.seen.size > MAX_SEEN) conv.seen.delete(conv.seen.values().next().value);
    return true;
  }

  /** The server put us in `this.room`: ask for its members, files and the room list. */
  enteredRoom() {
    this.members = [];
    this.files.roomChanged();
    this.send({ type: 'list_users' });
    this.send({ type: 'list_files' });
    this.send({ type: 'list_rooms' });
    this.ui.renderLists();
  }

  // ----- sending -----

  send(obj) {
    return this.conn.send(obj);
  }

  canSendBulk() {
    return this.conn.canSendBulk();
  }

  /** One line from the message box. Returns true when the box may be cleared. */
  submit(line) {
    const c = parseLine(line);
    const conv = this.active && this.convs.get(this.active);
    if (c.cmd === 'empty') return true;
    if (c.cmd === 'invalid') {
      this.notice(c.error, 'error');
      return false;
    }
    if (c.cmd === 'help') {
      this.notice(HELP, 'help', null, true);
      return true;
    }
    if (c.cmd === 'quit') {
      this.signOut();
      return true;
    }
    if (c.cmd === 'send') {
      $('file-input').click();
      return true;
    }
    if (!this.conn.isOpen() || this.phase !== 'chatting') {
      this.notice('Not connected: nothing was sent. Your text is still in the box.', 'error');
      return false;
    }
    return this.command(c, conv);
  }

  command(c, conv) {
    switch (c.cmd) {
      case 'say':
        if (conv && conv.kind === 'dm') return this.sendPrivate(conv.name, c.text);
        return this.sendRoom(c.text);
      case 'msg':
        this.openDm(c.to);
        return this.sendPrivate(c.to, c.text);
      case 'join':
        this.joinRoom(c.room);
        return true;
      case 'users':
        this.echo.users = true;
        this.send({ type: 'list_users' });
        return true;
      case 'rooms':
        this.echo.rooms = true;
        this.send({ type: 'list_rooms' });
        return true;
      case 'files':
        this.echo.files = true;
        this.ui.showFiles(true);
        this.send({ type: 'list_files' });
        return true;
      case 'time':
        this.send({ type: 'time' });
        return true;
      case 'get':
        this.files.get(c.id);
        this.ui.showFiles(true);
        return true;
      case 'admin':
        this.send({ type: 'admin', text: c.text });
        return true;
      default:
        return true;
    }
  }

  textTooLong(text) {
    const n = new TextEncoder().encode(text).length;
    if (n <= MAX_TEXT) return false;
    this.notice(`That message is ${n} bytes; the server takes at most ${MAX_TEXT}. Nothing was sent.`, 'error');
    return true;
  }

  sendRoom(text) {
    if (this.textTooLong(text)) return false;
    const conv = this.conv('room', this.room);
    this.send({ type: 'room_msg', text });
    const item = { type: 'msg', from: this.me, text, mine: true, state: 'pending' };
    this.pending.push(item);
    if (this.active !== conv.key) this.activate(conv.key);
    this.add(conv, item, false);
    return true;
  }

  sendPrivate(to, text) {
    if (this.textTooLong(text)) return false;
    // Shown when the server echoes it back (PRIVATE_MSG_DELIVERY), which also proves delivery.
    this.send({ type: 'private_msg', to, text });
    return true;
  }

  // ----- what the server says -----

  onMessage(m) {
    // The last thing said before a close explains it (a kick is ERROR_MSG then the close).
    if (m.type !== 'error_msg') this.lastError = { code: 0, text: '' };
    const handler = HANDLERS[m.type];
    if (handler) handler.call(this, m);
  }
}
