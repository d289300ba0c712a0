// report.mjs: the PASS/FAIL lines every SDK script prints for
// tests/integration/run.sh, and a check that a call throws the SDK's own
// exception type. reporter('sdk') gives {pass, fail, check, expectThrow}.
export function reporter(prefix, width = 300) {
  const pass = (n) => console.log(`PASS ${prefix}: ${n}`);
  const fail = (n, why) => console.log(`FAIL ${prefix}: ${n}: ${String(why).slice(0, width)}`);
  const check = (n, ok, why) => (ok ? pass(n) : fail(n, why));
  // Runs fn, which must throw an instance of cls; then more(e) may check it.
  async function expectThrow(name, cls, fn, more) {
    try {
      await fn();
      fail(name, 'no exception');
    } catch (e) {
      if (!(e instanceof cls)) return fail(name, `${e?.constructor?.name}: ${e?.message}`);
      pass(name);
      if (more) more(e);
    }
  }
  return { pass, fail, check, expectThrow };
}
