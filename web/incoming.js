// What each server message does to the chat session (`this` is the Chat). One handler per
// JSON "type"; types this page does not know are ignored, so a newer server never breaks it.

import { updateItem } from './view.js';

/** Case-insensitive equality of user names, as the server compares them. */
export function sameName(a, b) {
  return typeof a === 'string' && typeof b === 'string' && a.toLowerCase() === b.toLowerCase();
}

/** Friendly words for ERROR_MSG codes that end or refuse a sign-in. */
const LOGIN_ERROR = {
  18: 'The server is full right now. Try again later.',
  19: 'The server refused this connection.',
  20: 'The sign-in took too long.',
};

/** What each server message type does. Unknown types are ignored (newer servers). */
export const HANDLERS = {
  login_ack(m) {
    this.onLoginAck(m);
  },
  login_reject(m) {
    this.onLoginReject(m);
  },
  ping(m) {
    this.send({ type: 'pong', token: m.token || 0 });
  },
  room_msg(m) {
    const conv = this.conv('room', m.room);
    if (!this.remember(conv, `${m.id}:${m.ts}`)) return;
    if (m.history && this.backfill && this.backfill.room === m.room) {
      this.backfill.items.push({ type: 'msg', id: m.id, ts: m.ts, from: m.from, text: m.text, history: true,
        mine: sameName(m.from, this.me), state: 'sent' });
      return;
    }
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
      trackMembers.call(this, m.room, kind === 'join' ? [m.user] : [], 0, kind === 'join' ? [] : [m.user], 0);
      const counts = kind === 'join' ? { joined: '1', left: '0' } : { joined: '0', left: '1' };
      this.notice(`${m.user} ${verb}`, kind, this.conv('room', m.room), false, counts);
    } else if (kind === 'alert') {
      this.notice(`Alert from ${m.user || 'the server'}: ${m.text}`, 'alert');
    } else {
      this.notice(m.text, 'info');
    }
  },
  history_end(m) {
    const b = this.backfill;
    this.backfill = null;
    if (!b) return;
    const conv = this.conv('room', b.room);
    conv.more = !!m.more;
    if (!m.more) b.items.unshift({ type: 'notice', cls: 'divider', ts: Date.now(), text: `Start of #${b.room}` });
    this.prepend(conv, b.items);
    this.ui.renderLists();
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
    trackMembers.call(this, m.room, joined, jm, left, lm);
    const parts = [];
    if (joined.length || jm) parts.push(`${namesText(joined, jm)} joined`);
    if (left.length || lm) parts.push(`${namesText(left, lm)} left`);
    const counts = { joined: String(joined.length + jm), left: String(left.length + lm) };
    if (!parts.length) return;
    // Every name the server sent, for the tooltip.
    const title = [...joined.map((n) => `+ ${n}`), ...left.map((n) => `− ${n}`)].join('\n');
    this.add(this.conv('room', m.room), { type: 'notice', cls: 'join presence', text: parts.join('; '), data: counts,
      title }, false);
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
    if (code === 3 && this.backfill) {
      this.backfill = null;
      this.scrollback = false;
      this.notice('This server keeps no scroll-back.', 'info');
      this.ui.renderLists();
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
export function trackMembers(room, joined, joinedMore, left, leftMore) {
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
}

/** Names shown in a presence sentence; the rest are counted ("and 48 others"). */
const NAMES_SHOWN = 3;

/** "alice", "alice and bob", "alice, bob and carol", "alice, bob, carol and 48 others". */
export function namesText(allNames, allMore) {
  const names = allNames.slice(0, NAMES_SHOWN);
  const more = allMore + (allNames.length - names.length);
  if (more > 0) {
    const others = `${more} other${more === 1 ? '' : 's'}`;
    return names.length ? `${names.join(', ')} and ${others}` : others;
  }
  if (names.length <= 1) return names.join('');
  return `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}
