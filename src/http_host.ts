// What hardneg's two local web servers (`serve RUN_DIR…`, the report; `serve --index`, the search
// service) share about the address they listen on: loopback detection, the Host-header check that
// keeps other sites out through DNS rebinding, the one-line refusals of a port or host that cannot
// be bound, and the address as a URL.
import { UserError } from './errors.ts';

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/** A host (bind address or Host header, port removed) that means this machine only. */
export function isLoopback(host: string): boolean {
  return LOOPBACK.has(host.toLowerCase());
}

/**
 * Whether a request may be answered by a server bound to `boundHost`: bound to loopback, only
 * requests addressed to localhost are (a page of another site reaching it through DNS rebinding
 * carries its own name); bound elsewhere, all.
 */
export function hostAllowed(boundHost: string, hostHeader: string | undefined): boolean {
  return !isLoopback(boundHost) || isLoopback((hostHeader ?? '').replace(/:\d+$/, ''));
}

/** The one-line refusal of a failed listen() for the flags that chose the address, or the error itself. */
export function listenError(err: unknown, host: string, port: number): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') return new UserError(`--port ${port}: address ${host}:${port} is already in use (choose another --port, or 0 for a free one)`);
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') return new UserError(`--host ${host}: cannot bind to this address (${code})`);
  return err;
}

/** http://HOST:PORT/ with an IPv6 host in brackets. */
export function serverUrl(host: string, port: number): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}/`;
}
