/**
 * Error messages shown to callers can name internal endpoints (an embedder's URL, a database's
 * address). These patterns cover URLs and IPv4 addresses with or without a port.
 */
const URL_PATTERN = /\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]+/gi;
const IPV4_PATTERN = /\b\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?\b/g;

/** The message with every URL and IP address replaced by `<address>`. */
export const withoutAddresses = (message: string) =>
  message.replace(URL_PATTERN, '<address>').replace(IPV4_PATTERN, '<address>');
