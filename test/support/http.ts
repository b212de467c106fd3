import http from 'node:http';
import https from 'node:https';

/** GETs `url` (http or https) and resolves with the body as text. */
export function httpGet(url: string, options: https.RequestOptions = {}): Promise<string> {
  const client = url.startsWith('https') ? https : http;
  return new Promise((resolve, reject) => {
    client
      .get(url, options, (res) => {
        let body = '';
        res
          .setEncoding('utf8')
          .on('data', (d) => {
            body += d;
          })
          .on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}
