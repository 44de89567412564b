// Booking portal: small progressive enhancements; every form works without them.
'use strict';

function minutesOf(value) {
  const m = /^(\d{1,2}):(\d{2})/.exec(value || '');
  return m ? Number(m[1]) * 60 + Number(m[2]) : null;
}
function hhmm(total) {
  const t = ((total % 1440) + 1440) % 1440;
  return String(Math.floor(t / 60)).padStart(2, '0') + ':' + String(t % 60).padStart(2, '0');
}

// Duration and end time stay in step, whichever is typed.
function linkTimes() {
  const start = document.getElementById('start');
  const duration = document.getElementById('duration');
  const end = document.getElementById('end');
  if (!start || !duration || !end) return;
  const fromDuration = () => {
    const s = minutesOf(start.value); const d = Number(duration.value);
    if (s !== null && d > 0) end.value = hhmm(s + d);
  };
  const fromEnd = () => {
    const s = minutesOf(start.value); const e = minutesOf(end.value);
    if (s !== null && e !== null) duration.value = String(((e - s) + 1440) % 1440 || 1440);
  };
  start.addEventListener('input', fromDuration);
  duration.addEventListener('input', fromDuration);
  end.addEventListener('input', fromEnd);
}

// Périodicité: the days and range are shown only when the box is ticked.
function linkPeriodic() {
  const box = document.getElementById('periodic');
  const details = document.getElementById('periodic-details');
  if (!box || !details) return;
  const sync = () => { details.hidden = !box.checked; box.setAttribute('aria-expanded', String(box.checked)); };
  box.addEventListener('change', sync);
  sync();
}

// Invités: suggestions from the directory; picking one appends it to the list.
function linkSuggestions() {
  const search = document.getElementById('invitee-search');
  const list = document.getElementById('invitee-suggestions');
  const area = document.getElementById('invitees');
  if (!search || !list || !area) return;
  search.parentElement.hidden = false;
  let last = '';
  search.addEventListener('input', async () => {
    const q = search.value.trim();
    if (q.includes('@') && [...list.options].some(o => o.value === q)) {
      area.value = (area.value.trim() ? area.value.trim() + '\n' : '') + q;
      search.value = '';
      return;
    }
    if (q.length < 2 || q === last) return;
    last = q;
    const r = await fetch(search.dataset.suggest + '?q=' + encodeURIComponent(q), { credentials: 'same-origin' });
    if (!r.ok) return;
    list.replaceChildren(...(await r.json()).map(p => {
      const o = document.createElement('option');
      o.value = p.email; o.label = p.name + (p.entity ? ' — ' + p.entity : '');
      return o;
    }));
  });
}

function linkCopy() {
  for (const b of document.querySelectorAll('[data-copy]')) {
    b.addEventListener('click', async () => {
      const input = document.querySelector(b.dataset.copy);
      input.select();
      try { await navigator.clipboard.writeText(input.value); } catch (e) { document.execCommand('copy'); }
      b.textContent = b.dataset.done;
    });
  }
}

// Réunion instantanée: the room page resumes the session the portal minted, so the
// organizer enters as themselves without signing in a second time, at once; the
// room page then offers the link to copy for others (room-share.js). Without
// script, this page's own copy field and button do the same.
function linkEnter() {
  const a = document.getElementById('enter-room');
  if (!a) return;
  const prepare = () => {
    sessionStorage.setItem('visio-session:' + a.dataset.socket, JSON.stringify({ session: a.dataset.resume }));
    sessionStorage.setItem('visio-share:' + a.dataset.socket, a.href);
  };
  a.addEventListener('click', prepare);
  if (a.dataset.auto === 'true') { prepare(); location.replace(a.href); }
}

// Deleting something that cannot come back asks first (the form says what).
function linkConfirm() {
  for (const form of document.querySelectorAll('form[data-confirm]')) {
    form.addEventListener('submit', (e) => { if (!window.confirm(form.dataset.confirm)) e.preventDefault(); });
  }
}

function fillZone() {
  for (const el of document.querySelectorAll('[data-timezone]')) {
    try { el.value = Intl.DateTimeFormat().resolvedOptions().timeZone || ''; } catch (e) { /* default */ }
  }
}

document.addEventListener('DOMContentLoaded', () => {
  linkTimes(); linkPeriodic(); linkSuggestions(); linkCopy(); linkEnter(); linkConfirm(); fillZone();
});
