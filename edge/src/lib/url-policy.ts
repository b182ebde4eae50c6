// The one policy for URLs the edge fetches on a caller's behalf (image_url, mask/image URLs of edits and
// jobs, webhook_url): https only, no credentials, and never a host that is, names or embeds a
// special-purpose address (loopback, private, link-local, CGNAT, benchmarking, documentation, multicast,
// reserved, NAT64/6to4/mapped forms of those) or a local/metadata name. Redirects are never followed
// (callers fetch with redirect: "manual" and treat any 3xx as a failure), so the URL checked is the URL
// fetched. A Worker cannot resolve DNS: names are judged by their text (the WHATWG URL parser has already
// lower-cased them, applied IDNA and turned decimal/hex/octal IPv4 forms into dotted decimal), which is
// why names that embed a refused IPv4 before a wildcard-DNS suffix (127.0.0.1.nip.io) are refused by
// pattern. `allowPrivate` (ALLOW_PRIVATE_URLS, local development and tests) permits http and private hosts.

export interface UrlPolicy {
  allowPrivate: boolean;
}

export type UrlVerdict = { ok: true; url: URL } | { ok: false; reason: string };

/** IPv4 special-purpose blocks (IANA registry) never fetched: [first address, prefix length]. */
const REFUSED_V4: [number, number][] = [
  ["0.0.0.0", 8], // "this network"
  ["10.0.0.0", 8], // private
  ["100.64.0.0", 10], // shared address space (CGNAT)
  ["127.0.0.0", 8], // loopback
  ["169.254.0.0", 16], // link-local (cloud metadata)
  ["172.16.0.0", 12], // private
  ["192.0.0.0", 24], // IETF protocol assignments
  ["192.0.2.0", 24], // documentation (TEST-NET-1)
  ["192.88.99.0", 24], // 6to4 relay anycast
  ["192.168.0.0", 16], // private
  ["198.18.0.0", 15], // benchmarking
  ["198.51.100.0", 24], // documentation (TEST-NET-2)
  ["203.0.113.0", 24], // documentation (TEST-NET-3)
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved, and the broadcast address
].map(([a, len]) => [v4Number(String(a))!, Number(len)]);

/**
 * IPv6 blocks refused inside global unicast 2000::/3 (everything outside it is refused: unspecified,
 * loopback, IPv4-mapped ::ffff:0:0/96, IPv4-compatible ::/96, discard 100::/64, 64:ff9b:1::/48 local-use
 * NAT64, unique-local fc00::/7, link-local fe80::/10, site-local fec0::/10, multicast ff00::/8, SRv6 5f00::/16).
 */
const REFUSED_V6_GLOBAL: [bigint, number][] = [
  [0x2001n << 112n, 23], // IETF protocol assignments: Teredo, benchmarking, ORCHID
  [0x20010db8n << 96n, 32], // documentation
  [0x3fffn << 112n, 20], // documentation
];
const NAT64 = 0x0064ff9bn << 96n; // 64:ff9b::/96, the IPv4 address in the last 32 bits
const SIX_TO_FOUR = 0x2002n << 112n; // 2002::/16, the IPv4 address in bits 16-47

/** Names that only make sense inside a network: their last label, or the whole name. */
const LOCAL_SUFFIXES = ["localhost", "local", "internal", "localdomain", "arpa", "lan", "intranet", "corp", "home", "svc", "test", "example", "invalid", "onion", "alt"];
/** Public names that resolve to loopback for every subdomain. */
const LOOPBACK_DOMAINS = ["localtest.me", "lvh.me", "vcap.me", "localhost.direct", "lacolhost.com"];
/** Wildcard-DNS services: a name under them resolves to the address it embeds (dotted, dashed or hex). */
const WILDCARD_DNS = ["nip.io", "sslip.io", "xip.io", "traefik.me", "backname.io", "ip.addr.tools"];

function v4Number(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0;
}

function refusedV4(n: number): boolean {
  return REFUSED_V4.some(([base, len]) => len === 0 || n >>> (32 - len) === base >>> (32 - len));
}

/** A serialized IPv6 address (hex groups, "::" allowed, an IPv4 tail allowed) as a 128-bit number. */
export function ipv6Number(s: string): bigint | undefined {
  let text = s;
  const tail = /(\d{1,3}(?:\.\d{1,3}){3})$/.exec(text);
  if (tail) {
    const v4 = v4Number(tail[1]);
    if (v4 === undefined) return undefined;
    text = `${text.slice(0, -tail[1].length)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groups = (h: string) => (h === "" ? [] : h.split(":"));
  const head = groups(halves[0]);
  const rest = halves.length === 2 ? groups(halves[1]) : [];
  const fill = 8 - head.length - rest.length;
  if ((halves.length === 2 && fill < 1) || (halves.length === 1 && fill !== 0)) return undefined;
  const all = [...head, ...Array<string>(halves.length === 2 ? fill : 0).fill("0"), ...rest];
  let n = 0n;
  for (const g of all) {
    if (!/^[0-9a-f]{1,4}$/i.test(g)) return undefined;
    n = (n << 16n) | BigInt(parseInt(g, 16));
  }
  return n;
}

const inPrefix = (n: bigint, base: bigint, len: number) => n >> BigInt(128 - len) === base >> BigInt(128 - len);

function refusedV6(n: bigint): boolean {
  if (inPrefix(n, NAT64, 96)) return refusedV4(Number(n & 0xffffffffn));
  if (!inPrefix(n, 0x2000n << 112n, 3)) return true; // outside global unicast 2000::/3
  if (inPrefix(n, SIX_TO_FOUR, 16)) return refusedV4(Number((n >> 80n) & 0xffffffffn));
  return REFUSED_V6_GLOBAL.some(([base, len]) => inPrefix(n, base, len));
}

/** Dotted (a.b.c.d) and dashed (a-b-c-d) IPv4 addresses spelled inside a name's labels. */
function embeddedV4(labels: string[]): number[] {
  const found: number[] = [];
  for (let i = 0; i + 4 <= labels.length; i++) {
    const v = v4Number(labels.slice(i, i + 4).join("."));
    if (v !== undefined) found.push(v);
  }
  for (const label of labels) {
    for (const m of label.matchAll(/(?:^|[^\d])(\d{1,3})-(\d{1,3})-(\d{1,3})-(\d{1,3})(?=$|[^\d])/g)) {
      const v = v4Number(m.slice(1, 5).join("."));
      if (v !== undefined) found.push(v);
    }
  }
  return found;
}

/** What a wildcard-DNS name resolves to besides dotted/dashed IPv4: hex IPv4 (nip.io) and dashed IPv6 (sslip.io). */
function wildcardTargets(labels: string[]): { v4: number[]; v6: bigint[] } {
  const v4: number[] = [];
  const v6: bigint[] = [];
  for (const label of labels) {
    for (const m of label.matchAll(/(?:^|-)([0-9a-f]{8})(?=$|-)/g)) v4.push(parseInt(m[1], 16) >>> 0);
    // sslip.io spells IPv6 with dashes ("--1" is ::1); one that does not parse is refused like ::
    if (label.includes("--")) v6.push(ipv6Number(label.replaceAll("-", ":")) ?? 0n);
  }
  return { v4, v6 };
}

const endsWith = (host: string, suffix: string) => host === suffix || host.endsWith(`.${suffix}`);

/**
 * Whether a host (as URL.hostname gives it, or any spelling the URL parser accepts) is, names or embeds a
 * refused address. Unparseable hosts count as refused.
 */
export function isPrivateHost(raw: string): boolean {
  let spelled = raw.trim();
  if (spelled.includes(":") && !spelled.startsWith("[")) spelled = `[${spelled}]`;
  let host: string;
  try {
    host = new URL(`http://${spelled}/`).hostname.replace(/\.+$/, "");
  } catch {
    return true;
  }
  if (host.startsWith("[")) {
    const n = ipv6Number(host.slice(1, -1));
    return n === undefined || refusedV6(n);
  }
  const v4 = v4Number(host);
  if (v4 !== undefined) return refusedV4(v4);
  const labels = host.split(".");
  if (labels.length < 2 || labels.some((l) => l === "")) return true; // single-label names resolve inside the network
  if (LOCAL_SUFFIXES.includes(labels[labels.length - 1])) return true;
  if (LOOPBACK_DOMAINS.some((d) => endsWith(host, d))) return true;
  if (embeddedV4(labels).some(refusedV4)) return true;
  const wildcard = WILDCARD_DNS.find((d) => endsWith(host, d));
  if (wildcard) {
    const { v4: hex, v6 } = wildcardTargets(labels.slice(0, -wildcard.split(".").length));
    if (hex.some(refusedV4) || v6.some(refusedV6)) return true;
  }
  return false;
}

/** Checks a caller-supplied URL against the policy; the reason is safe to show (it says nothing about the network). */
export function checkUrl(raw: string, policy: UrlPolicy): UrlVerdict {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: "is not a valid URL" };
  }
  if (url.protocol !== "https:" && !(policy.allowPrivate && url.protocol === "http:")) return { ok: false, reason: "must be an https URL" };
  if (url.username || url.password) return { ok: false, reason: "must not contain credentials" };
  if (!policy.allowPrivate && isPrivateHost(url.hostname)) return { ok: false, reason: "must point to a public host" };
  return { ok: true, url };
}

/** A response that is a redirect: refused, never followed, so the checked URL stays the fetched one. */
export const isRedirect = (res: Response) => res.status >= 300 && res.status < 400;
