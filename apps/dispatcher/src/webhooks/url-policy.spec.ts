import { Logger } from '@nestjs/common';
import { Resolver, checkWebhookUrl, isBlockedAddress } from './url-policy';

const open = { allowPrivate: false, httpsOnly: false };
/** A resolver answering from a table, standing in for DNS (what a name resolves to is the input here). */
const dns = (table: Record<string, string[]>): Resolver => async (host) => {
  const found = table[host];
  if (!found) throw Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' });
  return found.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
};

describe('webhook URL policy', () => {
  it.each([
    '127.0.0.1', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '0.0.0.0', '100.64.0.1',
    '224.0.0.1', '239.255.255.250', '255.255.255.255', '100.100.100.200',
    '::1', '::', 'fe80::1', 'fc00::1', 'fd12:3456::1', 'ff02::1', 'fd00:ec2::254',
    '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:10.0.0.1', '::ffff:a9fe:a9fe', '64:ff9b::a9fe:a9fe',
    // 6to4 (2002:<IPv4>::), Teredo (2001:0::/32), local-use NAT64, IPv4-compatible, IPv4-translated.
    '2002:a9fe:a9fe::1', '2002:5db8:d70e::1', '2001:0:4136:e378:8000:63bf:3fff:fdd2', '64:ff9b:1::a9fe:a9fe', '64:ff9b:1:ffff::1',
    '::7f00:1', '::a9fe:a9fe', '::5db8:d70e', '::ffff:0:a9fe:a9fe', '::ffff:0:5db8:d70e',
  ])('blocks %s', (address) => {
    expect(isBlockedAddress(address)).toBe(true);
  });

  it.each(['93.184.215.14', '8.8.8.8', '172.32.0.1', '2606:4700::1111', '::ffff:93.184.215.14', '2001:4860:4860::8888', '2003::1', '64:ff9b:2::1'])('allows %s', (address) => {
    expect(isBlockedAddress(address)).toBe(false);
  });

  it('judges a name by every address it resolves to, IPv4 and IPv6', async () => {
    const resolve = dns({
      'public.test': ['93.184.215.14', '2606:4700::1111'],
      'v6-loopback.test': ['::1'],
      'mixed.test': ['93.184.215.14', '10.0.0.5'],
      'mapped.test': ['::ffff:169.254.169.254'],
    });
    const ok = await checkWebhookUrl('https://public.test/h?x=1', open, resolve);
    expect(ok).toEqual({ url: new URL('https://public.test/h?x=1'), targets: [{ address: '93.184.215.14', family: 4 }, { address: '2606:4700::1111', family: 6 }] });
    for (const host of ['v6-loopback.test', 'mixed.test', 'mapped.test']) {
      expect(await checkWebhookUrl(`https://${host}/h`, open, resolve)).toEqual({ problem: 'url resolves to a private, loopback, link-local or reserved address' });
    }
    expect(await checkWebhookUrl('https://nowhere.test/h', open, resolve)).toEqual({ problem: "url host 'nowhere.test' does not resolve" });
    expect(await checkWebhookUrl('https://v6-loopback.test/h', { ...open, allowPrivate: true }, resolve)).toMatchObject({ targets: [{ address: '::1' }] });
  });

  it('tells the tenant the rule but not the internal address; the log names it for the operator', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      const verdict = await checkWebhookUrl('https://internal.test/h', open, dns({ 'internal.test': ['10.20.30.40'] }));
      expect(JSON.stringify(verdict)).not.toContain('10.20.30.40');
      expect(warn).toHaveBeenCalledWith({ host: 'internal.test', address: '10.20.30.40' }, expect.stringContaining('refused'));
    } finally {
      warn.mockRestore();
    }
  });

  it('refuses http in production and credentials in the URL', async () => {
    expect(await checkWebhookUrl('http://93.184.215.14/h', { ...open, httpsOnly: true })).toEqual({ problem: 'url must use https in production' });
    expect(await checkWebhookUrl('https://93.184.215.14/h', { ...open, httpsOnly: true })).toMatchObject({ targets: [{ address: '93.184.215.14' }] });
    expect(await checkWebhookUrl('https://user:pw@93.184.215.14/h', open)).toEqual({ problem: 'url must not contain credentials' });
  });
});
