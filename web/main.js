// Entry point: builds the chat session and wires the page's controls to it.

import { Chat } from './chat.js';
import { fitChunks } from './files.js';
import { $ } from './view.js';

const chat = new Chat();

/** Content-Security-Policy violations seen by this page (the tests check there are none). */
let cspViolations = 0;
document.addEventListener('securitypolicyviolation', () => {
  cspViolations += 1;
  document.documentElement.dataset.cspViolations = String(cspViolations);
});

$('signin-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const register = ev.submitter && ev.submitter.value === 'register';
  const name = $('signin-name').value.trim();
  const secret = $('signin-secret').value;
  if (register && secret.length < 8) {
    chat.ui.signinError('A new account needs a password of 8 characters or more.');
    $('signin-secret').focus();
    return;
  }
  try {
    localStorage.setItem('chatproto.name', name);
  } catch {
    // storage may be off
  }
  chat.signIn(name, secret, register);
});

$('composer').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const input = $('input');
  if (chat.submit(input.value)) input.value = '';
  input.focus();
});

$('join-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const room = $('join-room').value.trim();
  if (!room) return;
  if (chat.submit(`/join ${room}`)) $('join-room').value = '';
});

$('admin-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const cmd = $('admin-command').value.trim();
  if (cmd && chat.submit(`/admin ${cmd}`)) $('admin-command').value = '';
});
for (const b of document.querySelectorAll('[data-admin]')) {
  b.addEventListener('click', () => chat.submit(`/admin ${b.dataset.admin}`));
}

$('sign-out').addEventListener('click', () => chat.signOut());
$('older-button').addEventListener('click', () => chat.loadOlder());
$('retry-now').addEventListener('click', () => chat.conn.retryNow());
$('rooms-refresh').addEventListener('click', () => chat.send({ type: 'list_rooms' }));
$('files-refresh').addEventListener('click', () => chat.send({ type: 'list_files' }));
$('files-toggle').addEventListener('click', () => {
  const open = $('files-panel').hidden;
  chat.ui.showFiles(open);
  if (open) chat.send({ type: 'list_files' });
});
$('share-button').addEventListener('click', () => $('file-input').click());
$('file-input').addEventListener('change', () => {
  const input = $('file-input');
  const file = input.files && input.files[0];
  input.value = '';
  if (file) {
    chat.ui.showFiles(true);
    chat.files.share(file);
  }
});
$('nav-toggle').addEventListener('click', () => {
  if ($('sidebar').classList.contains('open')) chat.ui.closeDrawer();
  else chat.ui.openDrawer();
});
// On a phone, a tap beside the open drawer closes it.
document.querySelector('.conversation').addEventListener('click', () => chat.ui.closeDrawer());
document.addEventListener('keydown', (ev) => {
  if (ev.key === 'Escape') chat.ui.closeDrawer();
});
document.addEventListener('visibilitychange', () => {
  if (!document.hidden) chat.ui.renderLists();
});

/**
 * The server's public settings (`GET /config.json`), or null from a server without them.
 * They shape the sign-in form: the secret field only where the server asks for one, named for
 * what it is, and "Create account" only on an accounts server. Without them, all is shown.
 */
async function loadSite() {
  try {
    const res = await fetch('config.json', { cache: 'no-store' });
    return res.ok ? await res.json() : null;
  } catch {
    return null;
  }
}

function shapeSignin(site) {
  if (!site || typeof site.auth !== 'string') return;
  const secret = $('signin-secret');
  const label = document.querySelector('label[for="signin-secret"]');
  const open = site.auth === 'open';
  secret.hidden = open;
  label.hidden = open;
  if (!open) {
    label.textContent = site.auth === 'accounts' ? 'Password' : 'Passkey';
    secret.required = true;
  }
  $('register-button').hidden = site.auth !== 'accounts';
  fitChunks(site.max_frame);
}

const site = await loadSite();
shapeSignin(site);
// A cluster node lists its nodes: the connection fails over to them when this one is gone.
if (site) chat.conn.setServers(site.servers);

// Start: pick up the session from before a reload, else ask for a name.
try {
  $('signin-name').value = localStorage.getItem('chatproto.name') || '';
} catch {
  // storage may be off
}
if (!chat.resume()) chat.ui.showSignin();
document.documentElement.dataset.ready = 'true';
