import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { Logger } from '@nestjs/common';

/**
 * Address ranges a webhook may never reach unless private URLs are allowed: loopback, private,
 * link-local (which holds the cloud metadata address 169.254.169.254), unspecified, multicast,
 * carrier-grade NAT and the other special-purpose ranges, in IPv4 and IPv6. IPv6 ranges that carry
 * or translate to an IPv4 address (NAT64, 6to4, Teredo, IPv4-compatible and -translated) are refused
 * whole: what they lead to is decided by a gateway's mapping, not by the address checked here.
 * Also the list the dispatcher's egress NetworkPolicy closes (k8s/base/network-policies.yaml,
 * checked by test/k8s.spec.ts).
 */
export const BLOCKED_RANGES: readonly { net: string; prefix: number; family: 'ipv4' | 'ipv6' }[] = [
  ...([
    ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
    ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24], ['203.0.113.0', 24],
    ['224.0.0.0', 4], ['240.0.0.0', 4],
    // Alibaba's metadata service, outside link-local.
    ['100.100.100.200', 32],
  ] as const).map(([net, prefix]) => ({ net, prefix, family: 'ipv4' as const })),
  ...([
    ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8], ['2001:db8::', 32], ['100::', 64],
    // IPv4-compatible (::a.b.c.d, which holds the unspecified address ::) and IPv4-translated (SIIT).
    ['::', 96], ['::ffff:0:0:0', 96],
    // NAT64: the well-known prefix and the local-use one.
    ['64:ff9b::', 96], ['64:ff9b:1::', 48],
    // 6to4 and Teredo relay to an IPv4 address of the attacker's choosing.
    ['2002::', 16], ['2001::', 32],
    // AWS's IPv6 metadata service (inside fc00::/7, listed for the record).
    ['fd00:ec2::254', 128],
  ] as const).map(([net, prefix]) => ({ net, prefix, family: 'ipv6' as const })),
];

const blocked = new BlockList();
for (const r of BLOCKED_RANGES) blocked.addSubnet(r.net, r.prefix, r.family);

export function isBlockedAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return blocked.check(address, 'ipv4');
  if (family === 6) {
    // An IPv4-mapped IPv6 address is judged as the IPv4 address it carries.
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped) return blocked.check(mapped[1], 'ipv4');
    return blocked.check(address, 'ipv6');
  }
  return true;
}

export const BLOCKED_ADDRESS_PROBLEM = 'url resolves to a private, loopback, link-local or reserved address';

const logger = new Logger('UrlPolicy');

export interface ResolvedTarget {
  address: string;
  family: 4 | 6;
}

export type Resolver = (host: string) => Promise<ResolvedTarget[]>;

export const systemResolver: Resolver = async (host) => {
  const found = await lookup(host, { all: true, verbatim: true });
  return found.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

export interface UrlPolicy {
  allowPrivate: boolean;
  httpsOnly: boolean;
}

/** Why a URL is refused, or the parsed URL and the addresses that were checked. */
export async function checkWebhookUrl(raw: string, policy: UrlPolicy, resolve: Resolver = systemResolver): Promise<{ problem: string } | { url: URL; targets: ResolvedTarget[] }> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { problem: 'url must be an absolute http or https URL' };
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return { problem: 'url must be an absolute http or https URL' };
  if (policy.httpsOnly && url.protocol !== 'https:') return { problem: 'url must use https in production' };
  if (url.username || url.password) return { problem: 'url must not contain credentials' };
  const host = url.hostname.replace(/^\[|\]$/g, '');
  let targets: ResolvedTarget[];
  try {
    targets = isIP(host) ? [{ address: host, family: isIP(host) === 6 ? 6 : 4 }] : await resolve(host);
  } catch {
    return { problem: `url host '${host}' does not resolve` };
  }
  if (!targets.length) return { problem: `url host '${host}' does not resolve` };
  if (!policy.allowPrivate) {
    const bad = targets.find((t) => isBlockedAddress(t.address));
    if (bad) {
      // The tenant learns the rule, not which internal address a name of theirs resolved to (that
      // would map the internal network for them); the operator gets the address in the log.
      logger.warn({ host, address: bad.address }, 'Webhook URL refused: it resolves to a blocked address');
      return { problem: BLOCKED_ADDRESS_PROBLEM };
    }
  }
  return { url, targets };
}
