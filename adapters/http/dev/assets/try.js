// The try page: a client of the public API in a few lines. Each call is shown
// with its request and response, and each answer is explained the way a
// client would branch on it: by status and problem `code`.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const phoneInput = $('phone');
  const codeInput = $('code');
  const keyInput = $('api-key');
  const outcome = $('outcome');
  const exchanges = $('exchanges');
  const webotpNote = $('webotp-note');
  const KEY = 'otpd.apiKey';

  keyInput.value = sessionStorage.getItem(KEY) || '';
  keyInput.addEventListener('input', () => sessionStorage.setItem(KEY, keyInput.value));

  const element = (tag, className, text) => {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  };

  const show = (kind, name, text) => {
    outcome.dataset.kind = kind;
    outcome.dataset.outcome = name;
    outcome.textContent = text;
  };

  // One exchange, shown as the wire carries it (the key itself is hidden).
  const record = (method, path, headers, body, status, statusText, answer) => {
    const item = element('li');
    item.append(element('p', 'line', `${method} ${path}`));
    const lines = Object.entries(headers).map(([name, value]) =>
      `${name}: ${name === 'Authorization' ? 'Bearer …' : value}`);
    if (body !== undefined) lines.push('', JSON.stringify(body, null, 2));
    item.append(element('pre', 'request', lines.join('\n')));
    item.append(element('p', 'line', status ? `→ ${status} ${statusText}` : '→ no answer'));
    item.append(element('pre', 'response', typeof answer === 'string' ? answer : JSON.stringify(answer, null, 2)));
    exchanges.prepend(item);
  };

  const call = async (method, path, body) => {
    const headers = {};
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (keyInput.value.trim()) headers.Authorization = `Bearer ${keyInput.value.trim()}`;
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
      });
    } catch (e) {
      record(method, path, headers, body, 0, '', String(e));
      return { status: 0, body: null };
    }
    const text = await response.text();
    let answer = text;
    try { answer = JSON.parse(text); } catch { /* shown as text */ }
    record(method, path, headers, body, response.status, response.statusText, answer);
    return { status: response.status, body: answer };
  };

  // What the API answered, as a user would be told.
  const explain = ({ status, body }) => {
    if (status === 0) return show('bad', 'network', 'No answer from otpd: is it running?');
    if (status === 202) {
      return show('ok', 'sent', `Code sent to ${body.phone} by ${body.provider}; it expires in ${body.expires_in} s. `
        + 'It appears in the inbox pane.');
    }
    if (status === 200 && body.status === 'approved') {
      return show('ok', 'approved', 'Approved: the code was right, and is now used up.');
    }
    if (status === 200 && body.status === 'pending') {
      return show('ok', 'pending', `A code is pending: ${body.attempts_remaining} attempts left, `
        + `expires in ${body.expires_in} s.`);
    }
    const code = body && typeof body === 'object' ? body.code : undefined;
    switch (code) {
      case 'code_mismatch':
        return show('warn', code, `Wrong code: ${body.attempts_remaining} attempts left.`);
      case 'max_attempts_reached':
        return show('bad', code, 'Locked: too many wrong codes. Send a new code to try again.');
      case 'not_found':
        return show('bad', code, 'No pending code: it expired, was used, or was never sent.');
      case undefined:
        return show('bad', 'unexpected', `Unexpected answer: HTTP ${status}.`);
      default: {
        const wait = body.retry_after ? ` Try again in ${body.retry_after} s.` : '';
        return show('bad', code, `${body.title} (${code}): ${body.detail}.${wait}`);
      }
    }
  };

  // WebOTP: where the browser supports it, it offers the code from an SMS
  // whose last line is "@<this host> #<code>" (otpd adds that line when
  // sms.webotp_domain is set), and fills it in with the user's consent.
  let webotp = null;
  const supportsWebOtp = 'OTPCredential' in window && navigator.credentials;
  webotpNote.textContent = supportsWebOtp
    ? 'This browser supports WebOTP: on a phone it offers the code from an SMS whose last line is '
      + '"@<your domain> #<code>" (otpd adds it when sms.webotp_domain is set) and fills it in here.'
    : 'autocomplete="one-time-code" lets phone keyboards suggest the code from the SMS; '
      + 'this browser has no WebOTP, which can fill it in by itself.';
  const awaitWebOtp = () => {
    if (!supportsWebOtp) return;
    if (webotp) webotp.abort();
    webotp = new AbortController();
    navigator.credentials.get({ otp: { transport: ['sms'] }, signal: webotp.signal })
      .then((credential) => {
        if (credential && credential.code) codeInput.value = credential.code;
      })
      .catch(() => { /* declined, aborted or unsupported here */ });
  };

  $('send-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const answer = await call('POST', '/v1/otp', { phone: phoneInput.value });
    explain(answer);
    if (answer.status === 202) {
      awaitWebOtp();
      codeInput.focus();
    }
  });

  $('verify-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    if (webotp) webotp.abort();
    explain(await call('POST', '/v1/otp/verify', { phone: phoneInput.value, code: codeInput.value.trim() }));
  });

  $('status-button').addEventListener('click', async () => {
    explain(await call('GET', `/v1/otp/${encodeURIComponent(phoneInput.value.trim())}`));
  });
})();
