// header_score: a Postern policy plugin in JavaScript.
//
// At the end of data it reads the message's header through the `message`
// import and scores it with a few rules a spam filter would start with:
//
//   no From:                       4   (RFC 5322 §3.6 requires it)
//   no Date:                       2   (required too)
//   no Message-ID:                 2   (every real MUA sends one)
//   Subject in capitals            3   (eight or more letters, none small)
//   Subject with !!! or $$$        2
//   each word of `words` in the Subject  5
//
// It adds `X-Header-Score: N (rules)` to every message it scores, and
// rejects one whose score reaches `threshold` with Postfix's content
// reject: 550 5.7.1 Message content rejected: ...
//
//   smtpd_end_of_data_restrictions = [
//       { plugin = "header_score", threshold = "6", words = "lottery,winner" },
//   ]
//
// init checks the arguments and names the one that is wrong. The module
// is written against the `plugin` world of wit/policy.wit: jco maps its
// records to objects with camelCase fields, its variants to
// { tag, val }, a `result` error to a thrown value.

import { log, reuseInstances } from 'postern:policy/host@0.1.0';
import { current } from 'postern:policy/message@0.1.0';

let threshold = 10;
let words = [];
let addHeader = true;

export function init(args) {
  for (const [key, value] of args) {
    if (key === 'threshold') {
      if (!/^[0-9]{1,4}$/.test(value.trim()) || Number(value) === 0) {
        throw `threshold: ${JSON.stringify(value)}: expected a score from 1 to 9999`;
      }
      threshold = Number(value);
    } else if (key === 'words') {
      words = value.split(/[\s,]+/).filter((w) => w !== '').map((w) => w.toLowerCase());
    } else if (key === 'add_header') {
      if (value !== 'yes' && value !== 'no') {
        throw `add_header: ${JSON.stringify(value)}: expected yes or no`;
      }
      addHeader = value === 'yes';
    } else {
      throw `${key}: unknown argument (expected threshold, words or add_header)`;
    }
  }
  // Nothing here outlives a call but the arguments read above, the same
  // for every transaction: one instance may serve many (wit/policy.wit,
  // `reuse-instances`), which spares the engine's start-up, the bulk of
  // a call's cost.
  reuseInstances();
}

// The rules that fire for a message, with their points.
function score(message) {
  const hits = [];
  const has = (name) => message.header(name).length > 0;
  if (!has('From')) hits.push(['NO_FROM', 4]);
  if (!has('Date')) hits.push(['NO_DATE', 2]);
  if (!has('Message-ID')) hits.push(['NO_MESSAGE_ID', 2]);
  const subject = message.header('Subject')[0] ?? '';
  const letters = subject.replace(/[^A-Za-z]/g, '');
  if (letters.length >= 8 && letters === letters.toUpperCase()) hits.push(['SUBJECT_CAPS', 3]);
  if (/!!!|\$\$\$/.test(subject)) hits.push(['SUBJECT_SHOUTS', 2]);
  const lower = subject.toLowerCase();
  for (const word of words) {
    if (lower.includes(word)) hits.push([`WORD_${word.toUpperCase()}`, 5]);
  }
  return hits;
}

export function check(req) {
  if (req.stage !== 'end-of-data') return { tag: 'dunno' };
  const message = current();
  if (message === undefined) return { tag: 'dunno' };
  try {
    return judge(message);
  } finally {
    // Hand the message back now rather than whenever the garbage
    // collector would: the host reuses an instance only once its guest
    // holds no message (a handle left open would keep this one's).
    message[Symbol.dispose]();
  }
}

// The verdict on `message`, and the header added to it.
function judge(message) {
  const hits = score(message);
  const total = hits.reduce((sum, [, points]) => sum + points, 0);
  const rules = hits.map(([name]) => name).join(' ') || 'none';
  if (total >= threshold) {
    log('info', `score ${total} (${rules}) reaches ${threshold}`);
    return {
      tag: 'reject',
      val: {
        code: 550,
        enhanced: '5.7.1',
        text: `Message content rejected: header score ${total} (${rules})`,
      },
    };
  }
  if (addHeader) {
    // A refused header is not worth failing the message for.
    try {
      message.addHeader('X-Header-Score', `${total} (${rules})`);
    } catch (e) {
      log('warn', `add-header: ${e}`);
    }
  }
  return { tag: 'dunno' };
}
