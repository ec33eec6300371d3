// File sharing: one upload (FILE_OFFER → FILE_ACCEPT → FILE_CHUNK… → FILE_DONE, confirmed by
// FILE_AVAILABLE) and one download (FILE_GET → FILE_CHUNK… → FILE_DONE) at a time, as the
// server allows; the room's file list; progress bars. Every download's SHA-256 is checked in
// the browser before it is offered for saving.

import { sha256Hex } from './sha256.js';
import { $, el, fmtSize, syncList } from './view.js';

/** Bytes of file data per FILE_CHUNK: fits the server's default 64 KiB frame once in base64. */
const CHUNK = 32 * 1024;
/** The chunk size in use: CHUNK, or less when the server's frame limit is smaller. */
let chunkBytes = CHUNK;

/**
 * Sizes upload chunks for a server whose frames are at most `maxFrame` bytes (its
 * `/config.json`): base64 makes 3 bytes 4, and the JSON around the data takes under 256.
 */
export function fitChunks(maxFrame) {
  if (!Number.isFinite(maxFrame) || maxFrame <= 0) return;
  chunkBytes = Math.max(768, Math.min(CHUNK, Math.floor((maxFrame - 256) / 4) * 3));
}
/** Upload pacing: at most this many chunks a second, in bursts of as many. The server allows
 * 100 messages a second per connection (bursts of 200); this leaves room for chatting. */
const CHUNKS_PER_SEC = 60;
/** Files larger than this are not read into the page at all (the server's own cap is lower). */
const MAX_READ = 512 * 1024 * 1024;

export class Files {
  /** `chat` gives: send(obj), canSendBulk(), notice(text, cls), room, me. */
  constructor(chat) {
    this.chat = chat;
    /** The room's files, oldest first: {id, name, size, from}. */
    this.list = [];
    /** The running upload, or null: {name, size, sha, bytes, id, sent, state, node}. */
    this.upload = null;
    /** The running download, or null: {id, name, size, parts, received, node}. */
    this.download = null;
    /** File ids waiting for the running download to finish. */
    this.queue = [];
    this.tokens = CHUNKS_PER_SEC;
    this.lastRefill = 0;
    this.pumpTimer = null;
  }

  /** Shares `file` (a File from the picker) with the current room. */
  async share(file) {
    if (this.upload && !['done', 'failed'].includes(this.upload.state)) {
      this.chat.notice('An upload is already running; wait for it to finish.', 'error');
      return;
    }
    if (file.size > MAX_READ) {
      this.chat.notice(`${file.name} is ${fmtSize(file.size)}: too large to share from a browser.`, 'error');
      return;
    }
    const up = { name: file.name, size: file.size, sha: '', bytes: null, id: null, sent: 0, state: 'hashing' };
    this.upload = up;
    this.renderTransfer(up, 'upload');
    up.bytes = new Uint8Array(await file.arrayBuffer());
    up.sha = await sha256Hex(up.bytes);
    if (this.upload !== up) return; // reset meanwhile (disconnect)
    up.state = 'offered';
    if (!this.chat.send({ type: 'file_offer', name: file.name, size: file.size, sha256: up.sha })) {
      this.fail(up, 'not connected');
      return;
    }
    this.renderTransfer(up, 'upload');
  }

  /** FILE_ACCEPT: start sending the chunks. */
  onAccept(msg) {
    const up = this.upload;
    if (!up || up.state !== 'offered') return;
    up.id = msg.id;
    up.state = 'sending';
    this.pump();
  }

  /** Sends as many chunks as the pacing and the socket's buffer allow, then reschedules. */
  pump() {
    clearTimeout(this.pumpTimer);
    const up = this.upload;
    if (!up || up.state !== 'sending') return;
    const now = performance.now();
    this.tokens = Math.min(CHUNKS_PER_SEC, this.tokens + ((now - this.lastRefill) / 1000) * CHUNKS_PER_SEC);
    this.lastRefill = now;
    while (up.sent < up.size && this.tokens >= 1 && this.chat.canSendBulk()) {
      const end = Math.min(up.sent + chunkBytes, up.size);
      const data = toBase64(up.bytes.subarray(up.sent, end));
      if (!this.chat.send({ type: 'file_chunk', id: up.id, offset: up.sent, data })) return;
      up.sent = end;
      this.tokens -= 1;
    }
    if (up.sent >= up.size) {
      this.chat.send({ type: 'file_done', id: up.id, sha256: up.sha });
      up.state = 'verifying';
      up.bytes = null;
    } else {
      this.pumpTimer = setTimeout(() => this.pump(), 20);
    }
    this.renderTransfer(up, 'upload');
  }

  /** FILE_AVAILABLE: a file shared in a room we are in (our own upload's confirmation too). */
  onAvailable(msg) {
    const up = this.upload;
    if (up && up.id === msg.id) {
      up.state = 'done';
      this.renderTransfer(up, 'upload');
    }
    if (msg.room === this.chat.room && !this.list.some((f) => f.id === msg.id)) {
      this.list.push({ id: msg.id, name: msg.name, size: msg.size, from: msg.from });
      this.renderList();
    }
  }

  /** LIST_FILES: the current room's files. */
  onList(msg) {
    if (msg.room !== this.chat.room) return;
    this.list = Array.isArray(msg.files) ? msg.files : [];
    this.renderList();
  }

  /** Downloads file `id` (queued behind a running download). */
  get(id) {
    if (this.download) {
      if (this.download.id !== id && !this.queue.includes(id)) this.queue.push(id);
      return;
    }
    const known = this.list.find((f) => f.id === id);
    const dl = { id, name: known ? known.name : `file-${id}`, size: known ? known.size : 0, parts: [], received: 0,
      state: 'receiving' };
    if (!this.chat.send({ type: 'file_get', id })) {
      this.chat.notice('Not connected: the download did not start.', 'error');
      return;
    }
    this.download = dl;
    this.renderTransfer(dl, 'download');
  }

  /** FILE_CHUNK of the running download. */
  onChunk(msg) {
    const dl = this.download;
    if (!dl || msg.id !== dl.id) return;
    if (msg.offset !== dl.received) {
      this.fail(dl, `chunk at offset ${msg.offset}, expected ${dl.received}`);
      return;
    }
    let bytes;
    try {
      bytes = fromBase64(msg.data);
    } catch {
      this.fail(dl, 'a chunk was not valid base64');
      return;
    }
    dl.parts.push(bytes);
    dl.received += bytes.length;
    this.renderTransfer(dl, 'download');
  }

  /** FILE_DONE: the last chunk arrived; check the digest, then offer the file for saving. */
  async onDone(msg) {
    const dl = this.download;
    if (!dl || msg.id !== dl.id) return;
    dl.state = 'checking';
    this.renderTransfer(dl, 'download');
    const all = new Uint8Array(dl.received);
    let at = 0;
    for (const p of dl.parts) {
      all.set(p, at);
      at += p.length;
    }
    dl.sha = await sha256Hex(all);
    if (dl.sha !== String(msg.sha256).toLowerCase()) {
      this.fail(dl, `SHA-256 mismatch: the server says ${msg.sha256}, the data is ${dl.sha}; not saved`);
    } else {
      dl.state = 'verified';
      dl.url = URL.createObjectURL(new Blob([all]));
      this.renderTransfer(dl, 'download');
      dl.link.click();
    }
    this.download = null;
    this.next();
  }

  /** FILE_REFUSED (an ERROR_MSG): fails whichever transfer is running. */
  onRefused(text) {
    if (this.upload && !['done', 'failed'].includes(this.upload.state)) {
      this.fail(this.upload, text);
    } else if (this.download) {
      this.fail(this.download, text);
      this.download = null;
      this.next();
    } else {
      this.chat.notice(`File refused: ${text}`, 'error');
    }
  }

  /** The connection dropped or the room changed: running transfers cannot continue. */
  reset(why) {
    if (this.upload && !['done', 'failed'].includes(this.upload.state)) this.fail(this.upload, why);
    if (this.download) this.fail(this.download, why);
    this.download = null;
    this.queue = [];
  }

  /** The room changed: its file list is requested anew. */
  roomChanged() {
    this.list = [];
    this.renderList();
  }

  next() {
    const id = this.queue.shift();
    if (id !== undefined) this.get(id);
  }

  fail(t, why) {
    t.state = 'failed';
    t.error = why;
    t.bytes = null;
    t.parts = [];
    this.renderTransfer(t, t.node && t.node.dataset.kind);
  }

  /** The room's file list, each with a Download button. */
  renderList() {
    const byId = new Map(this.list.map((f) => [String(f.id), f]));
    syncList($('file-list'), [...byId.keys()], (key) => {
      const f = byId.get(key);
      return el('li', { data: { file: key }, title: `file id ${f.id} (/get ${f.id})` },
        el('span', { class: 'file-name', text: f.name }),
        el('span', { class: 'file-meta', text: ` ${fmtSize(f.size)} · from ${f.from} ` }),
        el('button', { class: 'small', text: 'Download', attrs: { type: 'button', 'aria-label': `Download ${f.name}` },
          on: { click: () => this.get(f.id) } }));
    }, () => {});
    $('files-empty').hidden = this.list.length > 0;
  }

  /** One transfer's row: a label, a progress bar and a status (and a save link once verified). */
  renderTransfer(t, kind) {
    if (!t.node) {
      t.bar = el('progress', { attrs: { max: String(Math.max(t.size, 1)), value: '0' } });
      t.status = el('span', { class: 'transfer-status' });
      const label = kind === 'upload' ? `Sharing ${t.name}` : `Downloading ${t.name}`;
      t.node = el('div', { class: 'transfer', data: { kind } }, el('span', { class: 'transfer-name', text: label }),
        t.bar, t.status);
      t.bar.setAttribute('aria-label', label);
      const box = $('transfers');
      box.prepend(t.node);
      while (box.children.length > 5) box.lastElementChild.remove();
    }
    t.node.dataset.state = t.state;
    if (t.id !== null && t.id !== undefined) t.node.dataset.id = String(t.id);
    const done = kind === 'upload' ? t.sent : t.received;
    if (!t.size && t.state === 'verified') t.bar.max = Math.max(done, 1);
    t.bar.value = t.size ? Math.min(done, t.size) : done;
    t.status.textContent = statusText(t, kind);
    if (t.sha && t.state === 'verified') t.node.dataset.sha256 = t.sha;
    if (t.state === 'verified' && !t.link) {
      t.link = el('a', { class: 'button small', text: `Save ${t.name}`, attrs: { href: t.url, download: t.name } });
      t.node.append(t.link);
    }
  }
}

function statusText(t, kind) {
  switch (t.state) {
    case 'hashing':
      return 'computing SHA-256…';
    case 'offered':
      return 'waiting for the server…';
    case 'sending':
      return `${fmtSize(t.sent)} of ${fmtSize(t.size)}`;
    case 'verifying':
      return 'sent; the server is checking it…';
    case 'done':
      return 'shared ✓';
    case 'receiving':
      return t.size ? `${fmtSize(t.received)} of ${fmtSize(t.size)}` : fmtSize(t.received);
    case 'checking':
      return 'checking SHA-256…';
    case 'verified':
      return `SHA-256 verified ✓ ${t.sha.slice(0, 16)}…`;
    case 'failed':
      return `${kind === 'upload' ? 'not shared' : 'failed'}: ${t.error}`;
    default:
      return '';
  }
}

/** Standard base64 of a byte array. */
export function toBase64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x2000) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x2000));
  }
  return btoa(s);
}

/** The bytes of a standard base64 string (throws on bad input). */
export function fromBase64(text) {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
