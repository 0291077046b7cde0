// The inbox list, on the inbox page and in the try page's pane: loads the
// messages kept so far, then adds each new one as the server announces it
// (server-sent events), newest first, without reloading the page.
// Every text goes into the page as textContent: a phone or a message is
// never markup.
'use strict';

(() => {
  const list = document.getElementById('inbox');
  const status = document.getElementById('inbox-status');
  const empty = document.getElementById('inbox-empty');
  if (!list) return;
  // Where the try page takes a code, if this page has one.
  const codeInput = document.getElementById('code');
  const shown = new Map();
  let capacity = 100;

  // The first run of exactly six digits: the code in otpd's messages; in a
  // call's words, six digits each read as a sentence ("1. 2. 3. 4. 5. 6.").
  const codeIn = (text) => {
    const found = /(?:^|\D)(\d{6})(?!\d)/.exec(text);
    if (found) return found[1];
    const spoken = /(?:^|\D)(\d)\. (\d)\. (\d)\. (\d)\. (\d)\. (\d)\./.exec(text);
    return spoken ? spoken.slice(1).join('') : null;
  };

  const element = (tag, className, text) => {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  };

  const copy = async (code, button) => {
    try {
      await navigator.clipboard.writeText(code);
      button.textContent = 'Copied';
    } catch {
      button.textContent = 'Select the code to copy';
    }
    setTimeout(() => { button.textContent = 'Copy code'; }, 1500);
  };

  const render = (message, fresh) => {
    const item = element('li', fresh ? 'fresh' : '');
    item.dataset.id = String(message.id);
    const sent = new Date(message.sent_at * 1000);
    const meta = element('div', 'meta');
    meta.append(element('span', 'phone', message.phone));
    const time = element('time', '', sent.toLocaleTimeString());
    time.dateTime = sent.toISOString();
    time.title = sent.toLocaleString();
    meta.append(time);
    meta.append(element('span', 'badge', message.provider));
    if (message.channel && message.channel !== 'sms') meta.append(element('span', 'badge', message.channel));
    meta.append(element('span', 'badge state', message.state));
    item.append(meta);
    item.append(element('p', 'text', message.text));
    const code = codeIn(message.text);
    if (code) {
      const row = element('div', 'copy');
      row.append(element('code', 'code', code));
      const copyButton = element('button', '', 'Copy code');
      copyButton.type = 'button';
      copyButton.setAttribute('aria-label', `Copy code ${code} for ${message.phone}`);
      copyButton.addEventListener('click', () => copy(code, copyButton));
      row.append(copyButton);
      if (codeInput) {
        const use = element('button', 'secondary', 'Use code');
        use.type = 'button';
        use.setAttribute('aria-label', `Use code ${code} in the form`);
        use.addEventListener('click', () => { codeInput.value = code; codeInput.focus(); });
        row.append(use);
      }
      item.append(row);
    }
    if (fresh) setTimeout(() => item.classList.remove('fresh'), 4000);
    return item;
  };

  // Keeps the list ordered by id, newest first, and no longer than the server's.
  const add = (message, fresh) => {
    if (shown.has(message.id)) return;
    const item = render(message, fresh);
    const before = [...list.children].find((child) => Number(child.dataset.id) < message.id);
    list.insertBefore(item, before || null);
    shown.set(message.id, item);
    while (list.children.length > capacity) {
      const last = list.lastElementChild;
      shown.delete(Number(last.dataset.id));
      last.remove();
    }
    if (empty) empty.hidden = list.children.length > 0;
  };

  const load = async () => {
    const response = await fetch('/dev/inbox/messages', { cache: 'no-store' });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const body = await response.json();
    capacity = body.capacity;
    body.messages.forEach((message) => add(message, false));
    if (empty) empty.hidden = list.children.length > 0;
  };

  const say = (text) => { if (status) status.textContent = text; };

  // Subscribed before the list is read, so no message falls between them;
  // one seen twice is shown once.
  const events = new EventSource('/dev/inbox/events');
  events.addEventListener('open', () => {
    say('Live: new messages appear here as they are sent.');
    load().catch((e) => say(`Could not load the messages: ${e.message}`));
  });
  events.addEventListener('message', (event) => {
    const message = JSON.parse(event.data);
    add(message, true);
    say(`New message to ${message.phone} at ${new Date(message.sent_at * 1000).toLocaleTimeString()}.`);
  });
  events.addEventListener('resync', () => { load().catch(() => {}); });
  events.addEventListener('error', () => say('Disconnected from otpd; reconnecting…'));
})();
