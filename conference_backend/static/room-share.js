// Réunion instantanée: the portal sent its organizer straight into the room and left
// the room's link in sessionStorage; show it in the room with a copy button, so
// others can be invited without leaving. Nobody else sees this box.
const cfg = JSON.parse(document.getElementById('room-config').textContent);
const link = sessionStorage.getItem(`visio-share:${cfg.socket}`);
const room = document.querySelector('[data-role="stage"]');
const english = document.documentElement.lang === 'en';

if (link && room) {
  const box = document.createElement('aside');
  box.className = 'share';
  box.dataset.role = 'share';
  const label = document.createElement('label');
  label.htmlFor = 'share-link';
  label.textContent = english ? 'Link to share with the other participants' : 'Lien à partager avec les autres participants';
  const input = document.createElement('input');
  input.id = 'share-link';
  input.readOnly = true;
  input.value = link;
  const button = document.createElement('button');
  button.type = 'button';
  button.dataset.action = 'copy-link';
  button.textContent = english ? 'Copy the link' : 'Copier le lien';
  button.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(link);
    } catch (e) {
      input.select(); // no clipboard permission: the link is selected for Ctrl+C
      document.execCommand('copy');
    }
    button.textContent = english ? 'Link copied' : 'Lien copié';
  });
  const close = document.createElement('button');
  close.type = 'button';
  close.textContent = '×';
  close.setAttribute('aria-label', english ? 'Hide' : 'Masquer');
  close.addEventListener('click', () => {
    box.remove();
    sessionStorage.removeItem(`visio-share:${cfg.socket}`);
  });
  box.append(label, input, button, close);
  room.prepend(box);
}
