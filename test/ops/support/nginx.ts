/**
 * Debian's real nginx on loopback for tests: the shipped site (nginx/sites-available/fonana.conf
 * + nginx/snippets/) under the harness main config (nginx/test/nginx.conf) in a temp prefix, so
 * nothing touches /etc/nginx, /var/log or port 80. `renderSite` rewrites only the listen lines
 * and the upstream servers of the shipped file, and fails loudly if the file no longer has the
 * shape it expects (a silent no-op would test the wrong config). Log files the shipped config
 * writes under /var/log/nginx/ go to <prefix>/logs/ instead (accessLog()).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { repoRoot } from './paths.ts';
import { run, type RunResult } from './run.ts';

export const NGINX = process.env.NGINX_BIN ?? '/usr/sbin/nginx';
export const shippedSite = path.join(repoRoot, 'nginx/sites-available/fonana.conf');
export const shippedSnippets = path.join(repoRoot, 'nginx/snippets');
export const harnessConf = path.join(repoRoot, 'nginx/test/nginx.conf');

export interface SiteOptions {
  listenPort: number;
  appServers: readonly string[];
  wsServers: readonly string[];
  /** Adds an HTTPS server block with the same locations, as `certbot --nginx` would. */
  tls?: { port: number; certificate: string; key: string };
}

function replaceUpstreamServers(site: string, name: string, servers: readonly string[]): string {
  const block = new RegExp(`(upstream ${name} \\{)([\\s\\S]*?)(\\n\\})`);
  const match = block.exec(site);
  if (!match) throw new Error(`upstream ${name} not found in the shipped site`);
  const body = match[2] ?? '';
  const kept = body.split('\n').filter((line) => !/^\s*#?\s*server\s/.test(line));
  const lines = [...kept, ...servers.map((server) => `    server ${server} max_fails=3 fail_timeout=10s;`)];
  return site.replace(block, `$1${lines.join('\n')}$3`);
}

/** The shipped site with test ports: listens on 127.0.0.1:listenPort, upstreams as given. */
export function renderSite(site: string, options: SiteOptions): string {
  if (!/^\s*listen 80;$/m.test(site)) throw new Error('the shipped site no longer has `listen 80;`');
  let out = site
    .replace(/^(\s*)listen 80;$/m, `$1listen 127.0.0.1:${options.listenPort};`)
    .replace(/^\s*listen \[::\]:80;\n/m, '');
  out = replaceUpstreamServers(out, 'fonana_app', options.appServers);
  out = replaceUpstreamServers(out, 'fonana_ws', options.wsServers);
  if (options.tls) {
    if (!out.includes('include snippets/fonana-proxy.conf;')) throw new Error('the shipped site no longer includes snippets/fonana-proxy.conf');
    out += `
server {
    listen 127.0.0.1:${options.tls.port} ssl;
    server_name fonana.example.com;
    ssl_certificate ${options.tls.certificate};
    ssl_certificate_key ${options.tls.key};

    include snippets/fonana-proxy.conf;
}
`;
  }
  return out;
}

/** A self-signed certificate for 127.0.0.1 (clients trust it through NODE_EXTRA_CA_CERTS). */
export async function selfSignedCertificate(dir: string): Promise<{ certificate: string; key: string }> {
  const certificate = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  const result = await run('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', certificate,
  ], { timeoutMs: 30_000 });
  if (result.code !== 0) throw new Error(`openssl failed: ${result.stderr}`);
  return { certificate, key };
}

/** Debian's log directory in a shipped file, as a path relative to the prefix (`logs/…`). */
export function prefixLogs(conf: string): string {
  return conf.replace(/(\baccess_log\s+)\/var\/log\/nginx\//g, '$1logs/');
}

export class NginxPrefix {
  readonly dir: string;
  readonly conf: string;
  #child: ChildProcess | undefined;
  #log = '';

  private constructor(dir: string) {
    this.dir = dir;
    this.conf = path.join(dir, 'nginx.conf');
  }

  /**
   * A prefix laid out like /etc/nginx: nginx.conf (harness), sites-available/, sites-enabled/
   * (a link), snippets/. `site` replaces the shipped site's text when given.
   */
  static async create(site?: string): Promise<NginxPrefix> {
    const dir = await mkdtemp(path.join(tmpdir(), 'nginx-'));
    // Workers run as an unprivileged user when nginx starts as root: they must reach the prefix.
    await chmod(dir, 0o755);
    const prefix = new NginxPrefix(dir);
    await cp(harnessConf, prefix.conf);
    await cp(shippedSnippets, path.join(dir, 'snippets'), { recursive: true });
    for (const name of await readdir(path.join(dir, 'snippets'))) {
      const file = path.join(dir, 'snippets', name);
      await writeFile(file, prefixLogs(await readFile(file, 'utf8')));
    }
    await mkdir(path.join(dir, 'logs'));
    await mkdir(path.join(dir, 'sites-available'));
    await mkdir(path.join(dir, 'sites-enabled'));
    await mkdir(path.join(dir, 'tmp'));
    await writeFile(path.join(dir, 'sites-available/fonana.conf'), prefixLogs(site ?? (await readFile(shippedSite, 'utf8'))));
    await symlink('../sites-available/fonana.conf', path.join(dir, 'sites-enabled/fonana.conf'));
    return prefix;
  }

  /** `nginx -t` on this prefix's configuration (or on `conf`). */
  test(conf = this.conf): Promise<RunResult> {
    return run(NGINX, ['-p', `${this.dir}/`, '-c', conf, '-e', 'stderr', '-t'], { timeoutMs: 15_000 });
  }

  /** Starts nginx in the foreground as a child process and waits until `port` accepts. */
  async start(port: number): Promise<void> {
    const child = spawn(NGINX, ['-p', `${this.dir}/`, '-c', this.conf, '-e', 'stderr', '-g', 'daemon off;'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#child = child;
    child.stdout?.on('data', (chunk: Buffer) => (this.#log += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (this.#log += chunk.toString()));
    const deadline = Date.now() + 10_000;
    while (!(await accepts(port))) {
      if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}:\n${this.#log}`);
      if (Date.now() > deadline) throw new Error(`nginx did not listen on ${port}:\n${this.#log}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  log(): string {
    return this.#log;
  }

  /** The text of an access log the shipped config writes as /var/log/nginx/<name> ('' if none yet). */
  async accessLog(name: string): Promise<string> {
    return readFile(path.join(this.dir, 'logs', name), 'utf8').catch(() => '');
  }

  /** Fast shutdown (SIGTERM: the master stops its workers), then removes the prefix. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
