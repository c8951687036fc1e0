// Browser test of paritygate's operator page, run by tests/browser.rs against a running service:
//
//   node tests/browser/page.spec.mjs <url> <approver-token> <screenshot.png> <refused|accepted>
//
// Headless Debian Chromium with JavaScript disabled (the page must work without it). `refused`:
// the page shows wave 1 failing, clean_orders passing, orders failing with its criteria and the
// HTML key as text; the sign-off form answers 409 with the reason. `accepted` (after the test
// waived orders' failing criteria): wave 1 warns; the form answers 201 with the record; the page
// then shows the wave signed off; then clean_orders' epoch form is refused (a start in the future,
// 400) and accepted (201), and the page shows the epoch and wave 1's sign-off stale. Screenshots: <screenshot> (the page) and <screenshot>-<phase>.png
// (the form's answer). Exit 0 only if every check passed.
import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const [url, token, screenshot, phase] = process.argv.slice(2);
if (!url || !token || !screenshot || !['refused', 'accepted'].includes(phase)) {
  console.error('usage: page.spec.mjs <url> <approver-token> <screenshot.png> <refused|accepted>');
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
  console.log(`ok - ${what}`);
}

const userDataDir = mkdtempSync(join(tmpdir(), 'paritygate-chromium-'));
mkdirSync(dirname(screenshot), { recursive: true });
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  javaScriptEnabled: false,
  viewport: { width: 1280, height: 900 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let failed = false;
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('dialog', async (d) => { failed = true; console.error(`unexpected dialog: ${d.message()}`); await d.dismiss(); });
  const response = await page.goto(url, { waitUntil: 'load' });
  check(response.status() === 200, `GET / answers 200 (got ${response.status()})`);
  check((await page.title()).includes('operator page'), 'title names the operator page');
  check((await page.locator('script').count()) === 0, 'the page has no script elements');

  const attr = (sel) => page.locator(sel).first().getAttribute('data-verdict');
  const wave1 = page.locator('#wave-1');
  const orders = page.locator('section[id="service-orders"]');
  check((await attr('section[id="service-clean_orders"]')) === 'pass', 'clean_orders shows pass');
  if (phase === 'refused') {
    check((await attr('#wave-1')) === 'fail', 'wave 1 shows fail');
    check((await attr('section[id="service-orders"]')) === 'fail', 'orders shows fail');
    const keyParity = orders.locator('tr[data-criterion="key_parity"]');
    check((await keyParity.locator('.badge').innerText()) === 'fail', 'orders key_parity criterion fails');
    check((await keyParity.locator('td').nth(4).innerText()).length > 0, 'the criterion has an explanation');
    const keys = await orders.locator('td.key').allInnerTexts();
    check(keys.includes('<script>alert(1)</script>'), 'the HTML key is shown as text');
    check((await wave1.innerText()).includes('A sign-off would be refused now'), 'wave 1 says a sign-off would be refused');
  } else {
    check((await attr('#wave-1')) === 'warn', 'wave 1 shows warn');
    check((await attr('section[id="service-orders"]')) === 'warn', 'orders shows warn');
    check((await orders.locator('.badge.waived').count()) > 0, 'orders shows waived criteria');
  }

  // Submit the sign-off form like an operator does.
  const form = wave1.locator('form.signoff');
  await form.locator('input[name="token"]').fill(token);
  await form.locator('textarea[name="comment"]').fill(`browser ${phase} <check>`);
  const [answer] = await Promise.all([
    page.waitForNavigation({ waitUntil: 'load' }),
    form.locator('button[type="submit"]').click(),
  ]);
  const text = await page.locator('body').innerText();
  await page.screenshot({ path: screenshot.replace(/\.png$/, `-${phase}.png`), fullPage: true });
  if (phase === 'refused') {
    check(answer.status() === 409, `the refused sign-off answers 409 (got ${answer.status()})`);
    check(text.includes('409 Conflict: wave 1 cannot be signed off'), 'the 409 reason is shown');
    check(text.includes("the wave's verdict is `fail`"), 'the reason names the failing verdict');
  } else {
    check(answer.status() === 201, `the accepted sign-off answers 201 (got ${answer.status()})`);
    check(text.includes('201 Created') && text.includes('alice'), 'the record is shown with its approver');
    check(text.includes(`browser ${phase} <check>`), 'the record shows the comment as text');
  }
  await page.getByRole('link', { name: 'Back to the operator page' }).click();
  await page.waitForLoadState('load');
  if (phase === 'accepted') {
    check((await page.locator('#wave-1').innerText()).includes('signed off'), 'the page shows wave 1 signed off');
  }
  if (phase === 'accepted') {
    // An observation epoch of clean_orders through its form: a start in the future is refused
    // (400 naming the field), one from now is recorded; the page then shows it and wave 1's
    // sign-off as stale.
    const epochForm = () => page.locator('section[id="service-clean_orders"] form.epoch');
    const submit = async (startsAt) => {
      await epochForm().locator('input[name="token"]').fill(token);
      await epochForm().locator('textarea[name="reason"]').fill('browser <fix> deployed');
      await epochForm().locator('input[name="starts_at"]').fill(startsAt);
      const [answer] = await Promise.all([
        page.waitForNavigation({ waitUntil: 'load' }),
        epochForm().locator('button[type="submit"]').click(),
      ]);
      return [answer.status(), await page.locator('body').innerText()];
    };
    const [refusedStatus, refusedText] = await submit('2999-01-01T00:00:00Z');
    check(refusedStatus === 400, `an epoch starting in the future answers 400 (got ${refusedStatus})`);
    check(refusedText.includes('field `starts_at`: must not lie in the future'), 'the 400 names starts_at');
    await page.getByRole('link', { name: 'Back to the operator page' }).click();
    await page.waitForLoadState('load');
    const [startedStatus, startedText] = await submit('');
    await page.screenshot({ path: screenshot.replace(/\.png$/, '-epoch.png'), fullPage: true });
    check(startedStatus === 201, `the epoch form answers 201 (got ${startedStatus})`);
    check(startedText.includes('201 Created') && startedText.includes('alice')
      && startedText.includes('browser <fix> deployed'), 'the epoch is shown with who and why, as text');
    await page.getByRole('link', { name: 'Back to the operator page' }).click();
    await page.waitForLoadState('load');
    // The evaluator picks the epoch up at its next round.
    let shown = '';
    for (let i = 0; i < 30; i++) {
      shown = await page.locator('section[id="service-clean_orders"] table.epoch').innerText();
      if (shown.includes('browser <fix> deployed')) break;
      await new Promise((r) => setTimeout(r, 1000));
      await page.reload({ waitUntil: 'load' });
    }
    check(shown.includes('browser <fix> deployed') && shown.includes('alice'), 'the page shows the epoch: who and why');
    check((await page.locator('#wave-1').innerText()).includes('observation epoch'), "wave 1's sign-off is stale, naming the epoch");
  }
  await page.screenshot({ path: screenshot, fullPage: true });
  check(!failed, 'no dialog was opened (nothing executed)');
} catch (e) {
  console.error(e.stack || String(e));
  failed = true;
} finally {
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
