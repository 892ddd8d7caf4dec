import { expect } from 'chai';
import { sameOriginPath } from '../../lib/same-origin-path.ts';

describe('lib/same-origin-path', () => {
  it('keeps paths on this site, with their query and fragment', () => {
    expect(sameOriginPath('/posts/42?tab=comments#c1')).to.equal('/posts/42?tab=comments#c1');
    expect(sameOriginPath('/')).to.equal('/');
  });
  it('refuses every form a browser would send elsewhere', () => {
    for (const target of ['//evil.test', '/\\evil.test', '/\\/evil.test', 'https://evil.test', '/\t/evil.test', 'evil.test', '', undefined]) {
      expect(sameOriginPath(target), String(target)).to.equal('/');
    }
  });
});
