// The page around the conversation: the sign-in card, the top bar's connection status, the room,
// private-message and member lists with unread counts, the files panel, the admin panel, and the
// phone layout's drawer. Reads the chat's state; never changes it except through its methods.

import { $, convLabel, el, setBadge, syncList } from './view.js';

/** Wait before refreshing the room list after joins and leaves (a storm asks once). */
const ROOMS_REFRESH_MS = 1000;

export class Ui {
  constructor(chat) {
    this.chat = chat;
    this.roomsTimer = null;
    this.countdown = null;
  }

  // ----- sign-in -----

  showSignin() {
    $('app').hidden = true;
    $('signin').hidden = false;
    $('signin-status').textContent = '';
    this.setSigninEnabled(true);
    document.title = 'chatproto';
    $('signin-name').focus();
  }

  showApp(me) {
    $('signin').hidden = true;
    $('app').hidden = false;
    $('signin-error').hidden = true;
    $('me').textContent = me;
    $('me').title = `Signed in as ${me}`;
    $('signin-secret').value = '';
    if (!$('app').contains(document.activeElement) || document.activeElement === document.body) $('input').focus();
  }

  signinBusy(text) {
    $('signin-error').hidden = true;
    $('signin-status').textContent = text;
    this.setSigninEnabled(false);
  }

  signinError(text) {
    if (!$('app').hidden) this.showSignin();
    $('signin-status').textContent = '';
    $('signin-error').textContent = text;
    $('signin-error').hidden = false;
    this.setSigninEnabled(true);
  }

  setSigninEnabled(on) {
    $('signin-button').disabled = !on;
    $('register-button').disabled = !on;
  }

  // ----- connection status -----

  /** Shows the socket's state: connected, connecting, or the back-off countdown. */
  status(s, chatting) {
    const box = $('conn-status');
    clearInterval(this.countdown);
    box.dataset.state = s.state;
    $('retry-now').hidden = s.state !== 'waiting';
    if (!chatting) return;
    const to = s.server ? ` to ${s.server}` : '';
    box.dataset.server = s.server || '';
    if (s.state === 'online') box.textContent = `Connected${to}`;
    else if (s.state === 'connecting') box.textContent = s.attempt ? `Reconnecting${to} (attempt ${s.attempt})…` : `Connecting${to}…`;
    else if (s.state === 'offline') box.textContent = 'Offline';
    else {
      const until = Date.now() + s.delayMs;
      const tick = () => {
        const secs = Math.max(0, Math.ceil((until - Date.now()) / 1000));
        box.textContent = `Connection lost. Reconnecting${to} in ${secs} s…`;
      };
      tick();
      this.countdown = setInterval(tick, 1000);
    }
  }

  // ----- the conversation -----

  /** Shows `conv`: its title, its items (rendered with `render`), the message box's hint. */
  showConversation(conv, render) {
    $('conv-title').textContent = convLabel(conv);
    $('input').placeholder = conv.kind === 'room' ? `Message #${conv.name}`
      : `Private message to ${conv.name}`;
    const list = $('messages');
    list.dataset.conv = conv.key;
    list.replaceChildren(...conv.items.map(render));
    list.scrollTop = list.scrollHeight;
    this.closeDrawer();
  }

  /** Appends a rendered item, keeping the view at the bottom if it was there. */
  append(node) {
    const list = $('messages');
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    list.append(node);
    if (atBottom) list.scrollTop = list.scrollHeight;
  }

  // ----- lists -----

  /** Redraws the room, private-message and member lists, the badges and the title. */
  renderLists() {
    const c = this.chat;
    if (c.phase === 'signed-out') return;
    const active = c.active && c.convs.get(c.active);
    if (active) active.unread = document.hidden ? active.unread : 0;
    this.renderRooms(active);
    this.renderDms(active);
    this.renderMembers();
    const older = active && active.kind === 'room' && active.name === c.room && c.scrollback !== false &&
      active.more !== false;
    $('older-button').hidden = !older;
    let hidden = 0;
    let total = 0;
    for (const conv of c.convs.values()) {
      total += conv.unread;
      if (conv !== active) hidden += conv.unread;
    }
    const nav = $('nav-unread');
    nav.hidden = hidden === 0;
    nav.textContent = String(hidden);
    document.title = total ? `(${total}) chatproto` : 'chatproto';
  }

  renderRooms(active) {
    const c = this.chat;
    const rooms = new Map(c.rooms.map((r) => [r.name, r.users]));
    if (c.room && !rooms.has(c.room)) rooms.set(c.room, undefined);
    for (const conv of c.convs.values()) {
      if (conv.kind === 'room' && conv.unread && !rooms.has(conv.name)) rooms.set(conv.name, undefined);
    }
    const names = [...rooms.keys()].sort((a, b) => a.localeCompare(b));
    syncList($('room-list'), names, (name) => el('li', {},
      el('button', { class: 'entry', attrs: { type: 'button' }, data: { room: name },
        on: { click: () => this.roomClicked(name) } },
      el('span', { class: 'entry-name', text: `#${name}` }), el('span', { class: 'count' }),
      el('span', { class: 'badge' }))),
    (li, name) => {
      const btn = li.firstChild;
      const users = rooms.get(name);
      const count = btn.querySelector('.count');
      count.hidden = users === undefined;
      count.textContent = String(users);
      count.setAttribute('aria-label', `${users} ${users === 1 ? 'member' : 'members'}`);
      const conv = c.convs.get(`r:${name}`);
      setBadge(btn.querySelector('.badge'), conv ? conv.unread : 0);
      btn.classList.toggle('current', name === c.room);
      setCurrent(btn, active && active.key === `r:${name}`);
    });
  }

  roomClicked(name) {
    const c = this.chat;
    if (name === c.room) c.activate(`r:${name}`);
    else c.joinRoom(name);
  }

  renderDms(active) {
    const convs = this.chat.convs;
    const dms = [...convs.values()].filter((v) => v.kind === 'dm').sort((a, b) => b.last - a.last);
    syncList($('dm-list'), dms.map((d) => d.key), (key) => el('li', {},
      el('button', { class: 'entry', attrs: { type: 'button' }, on: { click: () => this.chat.activate(key) } },
        el('span', { class: 'entry-name' }), el('span', { class: 'badge' }))),
    (li, key) => {
      const conv = convs.get(key);
      const btn = li.firstChild;
      btn.dataset.dm = conv.name;
      btn.querySelector('.entry-name').textContent = `@${conv.name}`;
      setBadge(btn.querySelector('.badge'), conv.unread);
      setCurrent(btn, active === conv);
    });
    $('dm-empty').hidden = dms.length > 0;
  }

  renderMembers() {
    const c = this.chat;
    $('members-heading').textContent = c.room ? `In #${c.room} (${c.members.length})` : 'In the room';
    const me = (c.me || '').toLowerCase();
    const keys = c.members.map((name) => (name.toLowerCase() === me ? `me:${name}` : `u:${name}`));
    syncList($('member-list'), keys, (key) => {
      const name = key.slice(key.indexOf(':') + 1);
      if (key.startsWith('me:')) {
        return el('li', {}, el('span', { class: 'entry me-entry', text: `${name} (you)`, data: { user: name } }));
      }
      return el('li', {}, el('button', { class: 'entry', text: name, attrs: { type: 'button',
        'aria-label': `Write privately to ${name}` }, data: { user: name }, on: { click: () => c.openDm(name) } }));
    }, () => {});
  }

  /** Asks for the room list once, a moment after a burst of joins and leaves. */
  refreshRoomsSoon() {
    if (this.roomsTimer) return;
    this.roomsTimer = setTimeout(() => {
      this.roomsTimer = null;
      this.chat.send({ type: 'list_rooms' });
    }, ROOMS_REFRESH_MS);
  }

  // ----- panels -----

  showFiles(open) {
    $('files-panel').hidden = !open;
    $('files-toggle').setAttribute('aria-expanded', String(open));
  }

  setAdmin(on, text) {
    $('admin-panel').hidden = !on;
    if (text !== undefined) $('admin-output').textContent = text;
  }

  openDrawer() {
    $('sidebar').classList.add('open');
    $('nav-toggle').setAttribute('aria-expanded', 'true');
    const first = $('sidebar').querySelector('button, input');
    if (first) first.focus();
  }

  closeDrawer() {
    if (!$('sidebar').classList.contains('open')) return;
    $('sidebar').classList.remove('open');
    $('nav-toggle').setAttribute('aria-expanded', 'false');
    if ($('sidebar').contains(document.activeElement)) $('input').focus();
  }
}

/** Marks a list entry as the conversation on screen (or not). */
function setCurrent(btn, on) {
  if (on) btn.setAttribute('aria-current', 'true');
  else btn.removeAttribute('aria-current');
}
