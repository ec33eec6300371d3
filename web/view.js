// Everything that touches the DOM. Peer data only ever reaches the page as text nodes
// (textContent / createTextNode), never as markup: no innerHTML anywhere in the app.

/** The element with this id. */
export const $ = (id) => document.getElementById(id);

/**
 * Creates an element. `props`: class, text, title, data (dataset entries), attrs (attributes),
 * on (event handlers). Children are nodes or strings (added as text).
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  if (props.class) node.className = props.class;
  if (props.text !== undefined) node.textContent = props.text;
  if (props.title) node.title = props.title;
  for (const [k, v] of Object.entries(props.data || {})) node.dataset[k] = v;
  for (const [k, v] of Object.entries(props.attrs || {})) node.setAttribute(k, v);
  for (const [k, v] of Object.entries(props.on || {})) node.addEventListener(k, v);
  for (const c of children) {
    if (c !== null && c !== undefined) node.append(c);
  }
  return node;
}

/** "14:03" today, "29 Nov 14:03" on another day. */
export function fmtTime(ts) {
  const d = new Date(ts);
  const now = new Date();
  const hm = d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
  if (d.toDateString() === now.toDateString()) return hm;
  return `${d.toLocaleDateString(undefined, { day: 'numeric', month: 'short' })} ${hm}`;
}

/** "3 B", "12.5 KiB", "4.0 MiB". */
export function fmtSize(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(1)} GiB`;
}

/** A conversation's display name: "#room" or "@user". */
export function convLabel(conv) {
  return conv.kind === 'room' ? `#${conv.name}` : `@${conv.name}`;
}

/** Builds the list item for one conversation entry (message, private message, notice, file). */
export function renderItem(item, handlers) {
  const time = el('time', { text: fmtTime(item.ts), attrs: { datetime: new Date(item.ts).toISOString() } });
  time.title = new Date(item.ts).toLocaleString();
  let node;
  if (item.type === 'msg' || item.type === 'pm') {
    const from = item.mine
      ? el('span', { class: 'from mine', text: item.from })
      : el('button', { class: 'from', text: item.from, attrs: { type: 'button', 'aria-label': `Write to ${item.from}` },
        data: { user: item.from }, on: { click: () => handlers.onUser(item.from) } });
    node = el('li', { class: `msg ${item.type}` }, time, ' ', from, ' ', el('span', { class: 'text', text: item.text }));
    if (item.type === 'pm') node.dataset.to = item.to;
    if (item.history) {
      node.classList.add('history');
      node.append(' ', el('span', { class: 'tag', text: 'history' }));
    }
    if (item.mine) node.classList.add('mine');
  } else if (item.type === 'file') {
    const get = el('button', { class: 'small', text: 'Download', attrs: { type: 'button' },
      data: { file: String(item.id) }, on: { click: () => handlers.onDownload(item.id) } });
    node = el('li', { class: 'notice file' }, time, ' ',
      el('span', { class: 'text', text: `${item.from} shared ${item.name} (${fmtSize(item.size)})` }), ' ', get);
    node.dataset.file = String(item.id);
  } else {
    node = el('li', { class: `notice ${item.cls || 'info'}`, data: item.data || {}, title: item.title }, time, ' ',
      el(item.pre ? 'pre' : 'span', { class: 'text', text: item.text }));
  }
  item.node = node;
  updateItem(item);
  return node;
}

/** Refreshes the parts of a rendered item that change (id, ack state). */
export function updateItem(item) {
  const node = item.node;
  if (!node || item.type !== 'msg') return;
  if (item.id !== undefined) node.dataset.id = String(item.id);
  node.classList.toggle('pending', item.state === 'pending');
  node.classList.toggle('failed', item.state === 'failed');
  let err = node.querySelector('.error-tag');
  if (item.state === 'failed') {
    if (!err) {
      err = el('span', { class: 'error-tag' });
      node.append(' ', err);
    }
    err.textContent = `not sent: ${item.error}`;
  } else if (err) {
    err.remove();
  }
  const time = node.querySelector('time');
  if (time && item.ts) {
    time.textContent = fmtTime(item.ts);
    time.setAttribute('datetime', new Date(item.ts).toISOString());
  }
}

/**
 * Makes `list`'s children the nodes for `keys`, in that order. A child with the same key is kept
 * and updated in place, so keyboard focus and hover survive a redraw; new keys get `make(key)`;
 * every node then gets `update(node, key)`; children whose key is gone are removed.
 */
export function syncList(list, keys, make, update) {
  const old = new Map([...list.children].map((n) => [n.dataset.key, n]));
  let prev = null;
  for (const key of keys) {
    let node = old.get(key);
    if (node) {
      old.delete(key);
    } else {
      node = make(key);
      node.dataset.key = key;
    }
    update(node, key);
    const want = prev ? prev.nextSibling : list.firstChild;
    if (node !== want) list.insertBefore(node, want);
    prev = node;
  }
  for (const n of old.values()) n.remove();
}

/** Sets an unread badge element to `n` (hidden at 0). */
export function setBadge(node, n) {
  node.hidden = !n;
  node.textContent = n > 99 ? '99+' : String(n);
  node.setAttribute('aria-label', `${n} unread`);
}
