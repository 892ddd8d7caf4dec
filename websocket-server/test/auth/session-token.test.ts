import { expect } from 'chai';
import type { IncomingMessage } from 'node:http';
import { extractSessionToken, parseCookieHeader } from '../../src/auth/session-token.ts';

const request = (url: string, headers: Record<string, string> = {}) => ({ url, headers }) as unknown as IncomingMessage;

describe('auth/session-token', () => {
  describe('#extractSessionToken', () => {
    it('prefers the Bearer header over the query and the cookie', () => {
      const found = extractSessionToken(request('/?token=q', { authorization: 'Bearer h', cookie: 'next-auth.session-token=c' }));
      expect(found).to.deep.equal({ token: 'h', source: 'header' });
    });
    it('reads a bearer. subprotocol after the header, before the query', () => {
      const found = extractSessionToken(request('/?token=q', { 'sec-websocket-protocol': 'fonana.v1, bearer.a.b.c' }));
      expect(found).to.deep.equal({ token: 'a.b.c', source: 'subprotocol' });
    });
    it('reads ?token= next', () => {
      expect(extractSessionToken(request('/ws?token=q', { cookie: 'next-auth.session-token=c' }))).to.deep.equal({ token: 'q', source: 'query' });
    });
    it('prefers the __Secure- cookie', () => {
      const cookie = 'next-auth.session-token=plain; __Secure-next-auth.session-token=secure';
      expect(extractSessionToken(request('/', { cookie }))?.token).to.equal('secure');
    });
    it('joins chunks in numeric order, .10 after .9', () => {
      const chunks = Array.from({ length: 11 }, (_, i) => `next-auth.session-token.${i}=${String.fromCharCode(97 + i)}`);
      const cookie = chunks.reverse().join('; ');
      expect(extractSessionToken(request('/', { cookie }))?.token).to.equal('abcdefghijk');
    });
    it('ignores a non-Bearer Authorization header', () => {
      expect(extractSessionToken(request('/', { authorization: 'Basic abc' }))).to.equal(null);
    });
    it('returns null when nothing is there', () => {
      expect(extractSessionToken(request('/'))).to.equal(null);
    });
  });

  describe('#parseCookieHeader', () => {
    it('decodes values and keeps the first of duplicate names', () => {
      const cookies = parseCookieHeader('a=1; b=%3D%3D; a=2; broken; c="quoted"');
      expect([...cookies]).to.deep.equal([['a', '1'], ['b', '=='], ['c', 'quoted']]);
    });
  });
});
