// Builds DOM nodes from data. Text always becomes a text node (never HTML): memory text, tags,
// errors, whatever the API returns, is shown exactly as written and never interpreted. The
// console's Content-Security-Policy also enforces Trusted Types, so an HTML string assigned to
// innerHTML would be refused by the browser anyway.

/** `h('a', {href, class, onclick}, 'text', child, …)`: an element; falsy children are skipped. */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'value') el.value = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.append(child);
    else el.append(document.createTextNode(String(child)));
  }
}

/** A table: `columns` are `[header, (row) => cell, className?]`. */
export function table(columns, rows, empty = 'Nothing here.') {
  if (rows.length === 0) return h('p', { class: 'muted' }, empty);
  return h(
    'table',
    {},
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        columns.map(([title]) => h('th', {}, title)),
      ),
    ),
    h(
      'tbody',
      {},
      rows.map((row) =>
        h(
          'tr',
          {},
          columns.map(([, cell, cls]) => h('td', { class: cls }, cell(row))),
        ),
      ),
    ),
  );
}

/** An API error as the console shows it: code, message, and each field at fault. */
export function problemBox(err) {
  const code = err && typeof err.code === 'string' ? err.code : 'error';
  return h(
    'div',
    { class: 'problem', role: 'alert' },
    h('strong', {}, code),
    ': ',
    err?.message ?? String(err),
    err?.errors?.length
      ? h(
          'ul',
          {},
          err.errors.map((e) => h('li', {}, h('code', {}, e.field ?? '?'), ` ${e.message ?? ''}`)),
        )
      : null,
  );
}

export const notice = (...children) => h('div', { class: 'notice', role: 'status' }, ...children);

export const badge = (text, kind = '') => h('span', { class: `badge ${kind}`.trim() }, text);

/** Local time of an ISO timestamp (with the ISO form as a tooltip). */
export function time(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  const d = new Date(iso);
  return h('time', { datetime: iso, title: iso }, Number.isNaN(d.getTime()) ? iso : d.toLocaleString());
}

export const short = (s, n = 12) => (typeof s === 'string' && s.length > n ? `${s.slice(0, n)}…` : (s ?? ''));

export const memoryLink = (id) =>
  id ? h('a', { href: `#/memories/${encodeURIComponent(id)}`, class: 'mono' }, short(id, 8)) : '—';

export const score = (n) => (typeof n === 'number' ? n.toFixed(4) : '—');

/** The values of a form's named fields, trimmed; unchecked checkboxes are false. */
export function formValues(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name) continue;
    out[el.name] = el.type === 'checkbox' ? el.checked : el.value.trim();
  }
  return out;
}

/** Runs `fn` with the button disabled, showing any error in `out`. */
export async function busy(button, out, fn) {
  if (button) button.disabled = true;
  try {
    return await fn();
  } catch (err) {
    out?.replaceChildren(problemBox(err));
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}
