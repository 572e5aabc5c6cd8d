// The peer for bench/token_endpoint.py: oauth2-mock-server on 127.0.0.1, a free port,
// signing with one RSA-2048 key (RS256), its token endpoint at /oauth/token like rfcheck's.
// Prints {"port": N} on one line once it listens; stops on SIGTERM, SIGINT or stdin closing.
import { generateKeyPairSync } from "node:crypto";
import { OAuth2Server } from "oauth2-mock-server";

const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048, publicExponent: 65537 });
const jwk = { ...privateKey.export({ format: "jwk" }), kid: "bench-rs256", alg: "RS256", use: "sig" };

const server = new OAuth2Server(undefined, undefined, { endpoints: { token: "/oauth/token" } });
await server.issuer.keys.add(jwk);
await server.start(0, "127.0.0.1");
process.stdout.write(JSON.stringify({ port: server.address().port, modulus_bits: 2048 }) + "\n");

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(0), 1000).unref(); // keep-alive sockets may hold close() open
  await server.stop().catch(() => {});
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdin.on("end", stop);
process.stdin.resume();
