import { ApiError, api, onUnauthenticated, token } from './api.js';
import { h, problemBox } from './dom.js';
import { renderAudit } from './views/audit.js';
import { renderDeadLetters } from './views/dead-letters.js';
import { renderHolds } from './views/holds.js';
import { renderMemories } from './views/memories.js';
import { renderMemory } from './views/memory.js';
import { renderReembed } from './views/reembed.js';
import { renderSearch } from './views/search.js';

const DIVISION_KEY = 'memory-layer.console.division';
const $ = (id) => document.getElementById(id);

const views = {
  memories: renderMemories,
  search: renderSearch,
  audit: renderAudit,
  'dead-letters': renderDeadLetters,
  reembed: renderReembed,
  'legal-holds': renderHolds,
};

/** What every view gets: the division in use and a way to move to another view. */
const ctx = {
  division: sessionStorage.getItem(DIVISION_KEY) ?? 'default',
  navigate(hash) {
    window.location.hash = hash;
  },
};

let cleanup = null;
let rendering = 0;

/** `#/memories/<id>` → the memory view; `#/<view>` → that view; anything else → memories. */
async function route() {
  const run = ++rendering;
  if (typeof cleanup === 'function') cleanup();
  cleanup = null;
  const [, name = 'memories', arg] = window.location.hash.split('/');
  const view = name === 'memories' && arg ? renderMemory : (views[name] ?? renderMemories);
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('active', a.dataset.view === (views[name] ? name : 'memories'));
  }
  const root = h('div', {});
  $('view').replaceChildren(root);
  try {
    const done = await view(root, ctx, arg ? decodeURIComponent(arg) : undefined);
    if (run === rendering) cleanup = done ?? null;
    else if (typeof done === 'function') done();
  } catch (err) {
    root.replaceChildren(problemBox(err));
  }
}

function showLogin(message) {
  $('login').hidden = false;
  $('view').hidden = true;
  $('login-error').textContent = message ?? '';
  $('token').focus();
}

function hideLogin() {
  $('login').hidden = true;
  $('view').hidden = false;
  $('forget-token').hidden = token.get() === null;
}

/** Lists the caller's divisions; a 401 means this service wants a token. */
async function loadDivisions() {
  const { items } = await api('GET', '/v1/divisions');
  const select = $('division');
  const ids = items.map((d) => d.id);
  if (!ids.includes(ctx.division)) ctx.division = ids[0] ?? 'default';
  select.replaceChildren(...ids.map((id) => h('option', { value: id, selected: id === ctx.division }, id)));
  $('caller').textContent = token.get() ? 'signed in with a token' : 'no credentials (dev mode)';
}

async function start() {
  try {
    await loadDivisions();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      showLogin(token.get() ? `The token was refused: ${err.message}` : '');
      return;
    }
    $('view').replaceChildren(problemBox(err));
    return;
  }
  hideLogin();
  await route();
}

$('login-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const value = $('token').value.trim();
  $('token').value = '';
  if (!value) return;
  token.set(value);
  start();
});

$('forget-token').addEventListener('click', () => {
  token.clear();
  $('caller').textContent = '';
  $('division').replaceChildren();
  $('view').replaceChildren();
  showLogin('Token forgotten.');
});

$('division').addEventListener('change', (event) => {
  ctx.division = event.target.value;
  sessionStorage.setItem(DIVISION_KEY, ctx.division);
  if (window.location.hash.startsWith('#/memories/')) ctx.navigate('#/memories');
  else route();
});

onUnauthenticated(() => {
  if ($('login').hidden) showLogin('The service asked for credentials again (the token may have expired).');
});

window.addEventListener('hashchange', () => {
  if ($('login').hidden) route();
});

start();
