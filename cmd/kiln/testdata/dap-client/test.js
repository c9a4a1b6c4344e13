// kiln dap driven by VS Code's own debug adapter test client
// (@vscode/debugadapter-testsupport), as the editor drives it: the
// adapter is started in / (as an editor may start it), speaks DAP on its
// stdin and stdout, and is judged by what a client sees.
//
// Run by TestDAPClient (cmd/kiln/dap_client_test.go), which sets:
//   KILN         an executable that runs kiln with its --root: `$KILN dap`
//   KILN_README  the README, whose launch.json is the first launch here
'use strict';

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { DebugClient } = require('@vscode/debugadapter-testsupport');

const timeout = 30000;

// session starts kiln dap in / and records every event it sends, so that
// a wait never misses one that came before it was asked for.
async function session(t) {
  const dc = new DebugClient(process.env.KILN, 'dap', 'kiln', { cwd: '/' });
  dc.defaultTimeout = timeout;
  const events = [];
  for (const name of ['initialized', 'stopped', 'continued', 'thread', 'output', 'exited', 'terminated']) {
    dc.on(name, (e) => events.push(e));
  }
  await dc.start();
  // The adapter process, to read its stderr and exit code: the client
  // keeps it to itself.
  const proc = dc._adapterProcess;
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const ended = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  proc.stdin.on('error', () => {}); // a write after the adapter ended
  // After a test, also one that failed half-way: a disconnect, if the
  // adapter still runs, then SIGTERM (kiln cleans up), and its end.
  let exited = false;
  proc.on('exit', () => { exited = true; });
  t.after(async () => {
    if (!exited) {
      await Promise.race([dc.disconnectRequest().catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
    }
    if (!exited) {
      proc.kill();
    }
    await ended;
  });
  let seen = 0; // events[seen:] are not yet waited for
  const s = {
    dc,
    events,
    stderr: () => stderr,
    ended,
    // next waits for the next event named name (for which ok holds).
    async next(name, ok = () => true) {
      const deadline = Date.now() + timeout;
      for (;;) {
        for (; seen < events.length; seen++) {
          const e = events[seen];
          if (e.event === name && ok(e)) {
            seen++;
            return e;
          }
        }
        if (Date.now() > deadline) {
          throw new Error(`no ${name} event came; events: ${JSON.stringify(events.map((e) => [e.event, e.body]))}\nstderr: ${stderr}`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    // launch initializes the session and launches args.
    async launch(args) {
      await dc.launch(args);
      await s.next('initialized');
    },
    // stopped waits for the next stop and returns it with its top frame.
    async stopped() {
      const ev = await s.next('stopped');
      const st = await dc.stackTraceRequest({ threadId: ev.body.threadId });
      assert.ok(st.body.stackFrames.length > 0, `no frame for thread ${ev.body.threadId}`);
      return { ev, top: st.body.stackFrames[0] };
    },
    output: (category) => events.filter((e) => e.event === 'output' && (!category || e.body.category === category)).map((e) => e.body.output).join(''),
  };
  return s;
}

// workspace writes files (name → text) into a new directory.
function workspace(files) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-dap-client-'));
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

// column is the 1-based column where `what` starts on line (1-based) of
// file: where the user wrote the step.
function column(file, line, what) {
  const text = fs.readFileSync(file, 'utf8').split('\n')[line - 1];
  const i = text.indexOf(what);
  assert.ok(i >= 0, `${what} is not on line ${line} of ${file}`);
  return i + 1;
}

// readmeLaunch is the launch configuration of the README's launch.json,
// with ${workspaceFolder} replaced as VS Code does.
function readmeLaunch(folder) {
  const readme = fs.readFileSync(process.env.KILN_README, 'utf8');
  const m = readme.match(/## Debugging in VS Code\/Neovim[\s\S]*?```json\n([\s\S]*?)```/);
  assert.ok(m, 'the README has no launch.json under "Debugging in VS Code/Neovim"');
  const launch = JSON.parse(m[1].replaceAll('${workspaceFolder}', folder)).configurations[0];
  assert.ok(Array.isArray(launch.values) && launch.values.some((v) => !path.isAbsolute(v)),
    `the README's launch has no relative values file: ${JSON.stringify(launch)}`);
  return launch;
}

// balanced checks that every thread that started exited, once.
function balanced(events) {
  const started = new Map();
  const exited = new Map();
  for (const e of events.filter((e) => e.event === 'thread')) {
    const m = e.body.reason === 'started' ? started : exited;
    m.set(e.body.threadId, (m.get(e.body.threadId) || 0) + 1);
  }
  assert.ok(started.size > 0, 'no thread started');
  for (const [id, n] of started) {
    assert.equal(exited.get(id) || 0, n, `thread ${id} started ${n} times and exited ${exited.get(id) || 0} times`);
  }
  for (const [id] of exited) {
    assert.ok(started.has(id), `thread ${id} exited without starting`);
  }
}

// quiet checks that a session said nothing of a failed build.
function quiet(s) {
  for (const text of [s.output(), s.stderr()]) {
    assert.doesNotMatch(text, /build failed/, 'a stop the user asked for reads as a failure');
  }
}

test("the README's launch.json, with the adapter in /: relative values, breakpoints, columns, next, continue", { timeout: 60000 }, async (t) => {
  const app = 'from: busybox\nsteps:\n  - run: echo greeting={{ greeting }}\n  - run: echo two > /two\n  -   run: echo three\n';
  const ws = workspace({ 'app.yml': app, 'dev.yml': 'greeting: hello-from-dev\n' });
  const manifest = path.join(ws, 'app.yml');
  const s = await session(t);
  await s.launch(readmeLaunch(ws));
  const bps = await s.dc.setBreakpointsRequest({ source: { path: manifest }, breakpoints: [{ line: 4 }] });
  assert.deepEqual(bps.body.breakpoints.map((b) => [b.line, b.verified]), [[4, true]]);
  await s.dc.configurationDoneRequest();

  let { ev, top } = await s.stopped();
  assert.equal(ev.body.reason, 'entry');
  assert.deepEqual([top.source.path, top.line, top.column], [manifest, 3, column(manifest, 3, 'run:')]);
  await s.dc.continueRequest({ threadId: ev.body.threadId });

  ({ ev, top } = await s.stopped());
  assert.deepEqual([ev.body.reason, ev.body.hitBreakpointIds], ['breakpoint', [bps.body.breakpoints[0].id]]);
  assert.deepEqual([top.line, top.column], [4, column(manifest, 4, 'run:')]);
  await s.dc.nextRequest({ threadId: ev.body.threadId });

  ({ ev, top } = await s.stopped());
  assert.equal(ev.body.reason, 'step');
  assert.deepEqual([top.line, top.column], [5, column(manifest, 5, 'run:')]);
  await s.dc.continueRequest({ threadId: ev.body.threadId });

  const exited = await s.next('exited');
  assert.equal(exited.body.exitCode, 0, s.output());
  await s.next('terminated');
  assert.match(s.output('stdout'), /greeting=hello-from-dev/);
  balanced(s.events);
  await s.dc.disconnectRequest();
  assert.deepEqual(await s.ended, { code: 0, signal: null }, s.stderr());
});

test('a launch with cwd: a relative manifest, context and values resolve against it', { timeout: 60000 }, async (t) => {
  const ws = workspace({ 'sub/app.yml': 'from: busybox\nsteps:\n  - run: echo v={{ v }}\n', 'vals.yml': 'v: from-cwd\n' });
  const s = await session(t);
  await s.launch({ manifest: 'sub/app.yml', context: '.', values: ['vals.yml'], cwd: ws });
  await s.dc.configurationDoneRequest();
  assert.equal((await s.next('exited')).body.exitCode, 0, s.output());
  assert.match(s.output('stdout'), /v=from-cwd/);
});

test('Dockerfile: a breakpoint on a RUN is verified and hit at its column; on CMD and the other config-only instructions, not verified', { timeout: 60000 }, async (t) => {
  const lines = ['FROM busybox', '  RUN echo a > /a', 'ENV X=1', 'LABEL k=v', 'EXPOSE 80', 'USER root', 'CMD ["sh"]'];
  const ws = workspace({ Dockerfile: lines.join('\n') + '\n' });
  const dockerfile = path.join(ws, 'Dockerfile');
  const s = await session(t);
  await s.launch({ manifest: dockerfile });
  const bps = await s.dc.setBreakpointsRequest({ source: { path: dockerfile }, breakpoints: [2, 3, 4, 5, 6, 7].map((line) => ({ line })) });
  const got = bps.body.breakpoints.map((b) => [b.line, b.verified]);
  assert.deepEqual(got, [[2, true], [3, false], [4, false], [5, false], [6, false], [7, false]]);
  for (const b of bps.body.breakpoints.slice(1)) {
    const instr = lines[b.line - 1].split(' ')[0];
    assert.match(b.message || '', new RegExp(instr), `breakpoint on line ${b.line}: the message does not name ${instr}`);
  }
  await s.dc.configurationDoneRequest();
  const { ev, top } = await s.stopped();
  assert.deepEqual([ev.body.reason, top.line, top.column], ['breakpoint', 2, 3]);
  await s.dc.continueRequest({ threadId: ev.body.threadId });
  const exited = await s.next('exited');
  assert.equal(exited.body.exitCode, 0, s.output());
  assert.equal(s.events.filter((e) => e.event === 'stopped').length, 1, 'the build stopped again after the RUN');
});

test('a failure that cancels a branch: every thread that started exits; the error is said once', { timeout: 60000 }, async (t) => {
  const app = `stages:
  a:
    from: busybox
    steps:
      - run: sleep 0.5 && echo failing && exit 3
  b:
    from: busybox
    steps:
      - run: echo b0 && sleep 20
      - run: echo b1 never
  final:
    from: busybox
    steps:
      - copy: {from: a, src: /bin/sh, dst: /a}
      - copy: {from: b, src: /bin/sh, dst: /b}
target: final
`;
  const ws = workspace({ 'app.yml': app });
  const s = await session(t);
  await s.launch({ manifest: path.join(ws, 'app.yml'), noCache: true });
  await s.dc.setExceptionBreakpointsRequest({ filters: [] }); // a failure ends the build
  await s.dc.configurationDoneRequest();
  const exited = await s.next('exited');
  assert.equal(exited.body.exitCode, 1, s.output());
  await s.next('terminated');
  assert.doesNotMatch(s.output('stdout'), /b1 never/);
  balanced(s.events);
  const said = s.output('stderr');
  assert.match(said, /exit code 3|exit status 3/, said);
  assert.doesNotMatch(said, /build failed: build failed/);
});

test('disconnect in the middle of a step: the build ends as interrupted, quietly', { timeout: 60000 }, async (t) => {
  const ws = workspace({ 'app.yml': 'from: busybox\nsteps:\n  - run: echo sleeping && sleep 30\n  - run: echo never\n' });
  const s = await session(t);
  await s.launch({ manifest: path.join(ws, 'app.yml'), noCache: true });
  await s.dc.configurationDoneRequest();
  await s.next('output', (e) => e.body.output.includes('sleeping'));
  await s.dc.disconnectRequest({ terminateDebuggee: true });
  const exited = await s.next('exited');
  assert.equal(exited.body.exitCode, 130, s.output());
  assert.deepEqual(await s.ended, { code: 0, signal: null }, s.stderr());
  assert.doesNotMatch(s.output('stdout'), /never/);
  quiet(s);
  balanced(s.events);
});

test('terminate at a stop: the build ends as interrupted, quietly', { timeout: 60000 }, async (t) => {
  const ws = workspace({ 'app.yml': 'from: busybox\nsteps:\n  - run: echo one\n' });
  const s = await session(t);
  await s.launch({ manifest: path.join(ws, 'app.yml'), stopOnEntry: true });
  await s.dc.configurationDoneRequest();
  await s.stopped();
  await s.dc.terminateRequest();
  const exited = await s.next('exited');
  assert.equal(exited.body.exitCode, 130, s.output());
  await s.dc.disconnectRequest();
  assert.deepEqual(await s.ended, { code: 0, signal: null }, s.stderr());
  quiet(s);
});

test("services are threads: at a breakpoint on a test, its service runs as a thread of its own, which exits after the test", { timeout: 60000 }, async (t) => {
  const app = `from: busybox
services:
  db:
    image: busybox
    command: mkdir -p /www && echo up > /www/index.html && exec httpd -f -p 5432 -h /www
    ready: {port: 5432}
tests:
  - name: query
    services: [db]
    run: wget -qO- http://db:5432/ | grep up
`;
  const ws = workspace({ 'app.yml': app });
  const manifest = path.join(ws, 'app.yml');
  const s = await session(t);
  await s.launch({ manifest, noCache: true });
  const bps = await s.dc.setBreakpointsRequest({ source: { path: manifest }, breakpoints: [{ line: 8 }] });
  assert.deepEqual(bps.body.breakpoints.map((b) => [b.line, b.verified]), [[8, true]]);
  await s.dc.configurationDoneRequest();
  const { ev, top } = await s.stopped();
  assert.deepEqual([ev.body.reason, top.line], ['breakpoint', 8]);
  const threads = (await s.dc.threadsRequest()).body.threads.map((th) => th.name);
  assert.ok(threads.some((n) => n.startsWith('[main/test/query]')), `no thread of the test: ${JSON.stringify(threads)}`);
  assert.ok(threads.includes('[main/test/query/service/db] service: db (query)'), `no thread of the service: ${JSON.stringify(threads)}`);
  await s.dc.continueRequest({ threadId: ev.body.threadId });
  const exited = await s.next('exited');
  assert.equal(exited.body.exitCode, 0, s.output());
  balanced(s.events);
  const after = (await s.dc.threadsRequest()).body.threads.map((th) => th.name);
  assert.ok(!after.some((n) => n.includes('service: db')), `the service's thread is still listed: ${JSON.stringify(after)}`);
});
