// The chat session: signing in, the conversations (rooms and private messages), what each server
// message does to them, and the `/` commands. Rendering goes through ui.js and view.js.

import { Connection } from './connection.js';
import { HELP, MAX_USER, nameProblem, parseLine } from './commands.js';
import { Files } from './files.js';
import { $, renderItem, updateItem } from './view.js';
import { Ui } from './ui.js';

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

/** Friendly words for ERROR_MSG codes that end or refuse a sign-in. */
const LOGIN_ERROR = {
  18: 'The server is full right now. Try again later.',
  19: 'The server refused this connection.',
  20: 'The sign-in took too long.',
};

/** Case-insensitive equality of user names, as the server compares them. */
function sameName(a, b) {
  return typeof a === 'string' && typeof b === 'string' && a.toLowerCase() === b.toLowerCase();
}

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
    /** Set by a drop; the next LOGIN_ACK says "reconnected". */
    this.outage = false;
    /** Set by /users, /rooms, /files: print the next answer in the conversation too. */
    this.echo = { users: false, rooms: false, files: false };
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
        : `Cannot reach the chat server at ${location.host}. Is it running? Try again in a moment.`);
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
    this.ui.status({ state: 'online', attempt: 0 }, true);
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
    if (code === 12 && this.takenRetries > 0) {
      // After a reload or a drop the server may still hold the old session for a moment.
      this.takenRetries -= 1;
      this.ui.signinBusy('Waiting for the previous session to end…');
      this.conn.drop(true);
      return;
    }
    if (this.everLoggedIn && code === 16) {
      this.conn.drop(true);
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

/** What each server message type does. Unknown types are ignored (newer servers). */
const HANDLERS = {
  login_ack: Chat.prototype.onLoginAck,
  login_reject: Chat.prototype.onLoginReject,
  ping(m) {
    this.send({ type: 'pong', token: m.token || 0 });
  },
  room_msg(m) {
    const conv = this.conv('room', m.room);
    if (!this.remember(conv, `${m.id}:${m.ts}`)) return;
    conv.lastId = Math.max(conv.lastId, Number(m.id) || 0);
    const mine = sameName(m.from, this.me);
    if (m.history && mine) {
      // Our own message whose ack was lost in a drop: it did arrive; mark it sent.
      const lost = conv.items.find((i) => i.type === 'msg' && i.mine && i.state !== 'sent' && i.text === m.text);
      if (lost) {
        Object.assign(lost, { id: m.id, ts: m.ts, state: 'sent' });
        updateItem(lost);
        return;
      }
    }
    if (m.history && conv.divider) this.add(conv, { type: 'notice', cls: 'divider', text: `Recent history of #${m.room}` });
    conv.divider = false;
    this.add(conv, { type: 'msg', id: m.id, ts: m.ts, from: m.from, text: m.text, history: !!m.history, mine,
      state: 'sent' }, !m.history && !mine);
  },
  room_msg_ack(m) {
    const item = this.pending.shift();
    if (!item) return;
    Object.assign(item, { id: m.id, ts: m.ts, state: 'sent' });
    const conv = this.conv('room', this.room);
    this.remember(conv, `${m.id}:${m.ts}`);
    conv.lastId = Math.max(conv.lastId, Number(m.id) || 0);
    updateItem(item);
  },
  private_msg_delivery(m) {
    const mine = sameName(m.from, this.me);
    const peer = mine ? m.to : m.from;
    const conv = this.conv('dm', peer);
    conv.name = peer;
    this.add(conv, { type: 'pm', ts: m.ts, from: m.from, to: m.to, text: m.text, mine }, !mine);
  },
  join_room(m) {
    // Back in our room after a reconnect while reading a private conversation: stay there.
    const auto = this.wantRoom === m.room && this.room !== m.room && this.active &&
      this.convs.get(this.active).kind === 'dm';
    this.room = m.room;
    this.wantRoom = m.room;
    this.saveSession();
    this.files.reset('you changed rooms');
    const conv = this.conv('room', m.room);
    conv.divider = true;
    if (!auto) this.activate(conv.key);
    this.notice(`You are in #${m.room}.`, 'info', conv);
    this.enteredRoom();
  },
  list_users(m) {
    if (m.room !== this.room) return;
    this.members = Array.isArray(m.users) ? m.users : [];
    this.ui.renderLists();
    if (this.echo.users) {
      this.echo.users = false;
      this.notice(`In #${m.room} (${this.members.length}): ${this.members.join(', ')}`);
    }
  },
  list_rooms(m) {
    this.rooms = Array.isArray(m.rooms) ? m.rooms : [];
    this.ui.renderLists();
    if (this.echo.rooms) {
      this.echo.rooms = false;
      this.notice(`Rooms: ${this.rooms.map((r) => `#${r.name} (${r.users})`).join(', ') || 'none'}`);
    }
  },
  list_files(m) {
    this.files.onList(m);
    if (this.echo.files) {
      this.echo.files = false;
      const list = this.files.list.map((f) => `#${f.id} ${f.name} (${f.size} bytes, from ${f.from})`);
      this.notice(list.length ? `Files in #${m.room}:\n${list.join('\n')}` : `No files in #${m.room} yet.`, 'info',
        null, true);
    }
  },
  system_msg(m) {
    const kind = m.kind || 'info';
    if (['join', 'leave', 'disconnect'].includes(kind)) {
      if (m.room !== this.room) return;
      const verb = { join: 'joined', leave: 'left', disconnect: 'disconnected' }[kind];
      this.presence(m.room, kind === 'join' ? [m.user] : [], 0, kind === 'join' ? [] : [m.user], 0);
      const counts = kind === 'join' ? { joined: '1', left: '0' } : { joined: '0', left: '1' };
      this.notice(`${m.user} ${verb}`, kind, this.conv('room', m.room), false, counts);
    } else if (kind === 'alert') {
      this.notice(`Alert from ${m.user || 'the server'}: ${m.text}`, 'alert');
    } else {
      this.notice(m.text, 'info');
    }
  },
  replay_end(m) {
    if (m.gap) {
      const lost = Number(m.lost) || 0;
      this.notice(`Some messages of #${m.room} from while you were away are no longer kept${lost ? ` (${lost})` : ''}.`,
        'info', this.conv('room', m.room));
    }
  },
  presence(m) {
    if (m.room !== this.room) return;
    const joined = Array.isArray(m.joined) ? m.joined : [];
    const left = Array.isArray(m.left) ? m.left : [];
    const jm = Number(m.joined_more) || 0;
    const lm = Number(m.left_more) || 0;
    this.presence(m.room, joined, jm, left, lm);
    const parts = [];
    if (joined.length || jm) parts.push(`${namesText(joined, jm)} joined`);
    if (left.length || lm) parts.push(`${namesText(left, lm)} left`);
    const counts = { joined: String(joined.length + jm), left: String(left.length + lm) };
    if (parts.length) this.notice(parts.join('; '), 'join presence', this.conv('room', m.room), false, counts);
  },
  error_msg(m) {
    const code = m.code;
    const text = typeof m.text === 'string' ? m.text : '';
    this.lastError = { code: code === 22 && this.adminProbe ? 0 : code, text };
    if (this.phase === 'signing-in' && !this.everLoggedIn) {
      this.ui.signinError(`${LOGIN_ERROR[code] || 'The server refused the connection.'} (${text})`);
      return;
    }
    if (code === 22 && this.adminProbe) {
      this.adminProbe = false;
      return;
    }
    if ([8, 15, 16, 255].includes(code) && this.pending.length) {
      this.failItem(this.pending.shift(), text);
      return;
    }
    if (code === 23) {
      this.files.onRefused(text);
      return;
    }
    this.notice(text || `error ${code}`, 'error');
  },
  admin(m) {
    if (this.adminProbe) {
      this.adminProbe = false;
      this.isAdmin = true;
      this.ui.setAdmin(true, m.text);
      return;
    }
    this.ui.setAdmin(true, m.text);
    this.notice(m.text, 'admin', null, true);
  },
  time(m) {
    this.notice(`Server time: ${new Date(m.ts).toLocaleString()}`);
  },
  file_accept(m) {
    this.files.onAccept(m);
  },
  file_chunk(m) {
    this.files.onChunk(m);
  },
  file_done(m) {
    this.files.onDone(m);
  },
  file_available(m) {
    this.files.onAvailable(m);
    if (m.room === this.room) {
      this.add(this.conv('room', m.room), { type: 'file', id: m.id, name: m.name, size: m.size, from: m.from },
        !sameName(m.from, this.me));
    }
  },
};

/** Member-list bookkeeping for joins and leaves (a storm with `more` unnamed: ask the server). */
Chat.prototype.presence = function presence(room, joined, joinedMore, left, leftMore) {
  const set = new Map(this.members.map((n) => [n.toLowerCase(), n]));
  joined.forEach((n) => set.set(n.toLowerCase(), n));
  left.forEach((n) => set.delete(n.toLowerCase()));
  this.members = [...set.values()].sort();
  // A storm with unnamed members, or someone who came and went inside one window (in both
  // lists, order unknown): the server's list is the authority.
  const both = joined.some((n) => left.some((l) => sameName(n, l)));
  if (joinedMore || leftMore || both) this.send({ type: 'list_users' });
  this.ui.renderLists();
  this.ui.refreshRoomsSoon();
};

/** "alice", "alice and bob", "alice, bob and carol", "alice, bob and 48 others". */
export function namesText(names, more) {
  if (more > 0) {
    const others = `${more} other${more === 1 ? '' : 's'}`;
    return names.length ? `${names.join(', ')} and ${others}` : others;
  }
  if (names.length <= 1) return names.join('');
  return `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}
