/*
 * Acme Worker for the JVM: a Request Finance integration (client credentials flow), one unit of
 * API work per run. Java 17, the JDK only: run it with `java Worker.java`.
 *
 * The Java twin of examples/cc_worker/acme_worker.py, requirement for requirement:
 * - token request: grant_type=client_credentials, audience=accounts, the client authenticated
 *   with client_secret_basic (ID and secret form-urlencoded before base64, RFC 6749 2.3.1), no
 *   scope, so never offline_access (this flow returns no refresh token, RFC 6749 4.4.3);
 * - the access token is cached in a file (RF_TOKEN_CACHE) between runs and reused until less
 *   than 60 s of validity remain; runs that start together share one token request (file lock);
 * - after a 401 invalid_token: one new token, one retry, then a clean stop (never a loop);
 * - token endpoint 429/5xx: Retry-After honoured (capped at 2 s), at most 2 retries;
 * - Authorization: Bearer and X-Network on every API call; no token or secret is ever printed.
 *
 * The real hosts are hard-coded. Under rfcheck (`[target.intercept] hosts = true`) the JVM's
 * proxy properties and a truststore route them to the mock; this program does not know.
 *
 * Environment: RF_CLIENT_ID, RF_CLIENT_SECRET, RF_NETWORK (exactly "test" or "live"),
 * RF_TOKEN_CACHE (optional; default: <java.io.tmpdir>/acme-rf-worker-token.json).
 * Exit status: 0 = the work was done, 1 = it failed, 2 = the configuration is wrong.
 */

import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

public final class Worker {
    static final String TOKEN_URL = "https://auth.request.finance/oauth/token";
    static final String API_URL = "https://api.request.finance";
    static final String AUDIENCE = "accounts";
    static final long REFRESH_MARGIN_SECONDS = 60; // get a new token when less than this remains
    static final int MAX_RETRIES = 2; // token endpoint retries after 429/5xx
    static final double MAX_RETRY_SLEEP_SECONDS = 2.0;
    static final Duration TIMEOUT = Duration.ofSeconds(10);

    public static void main(String[] args) {
        int status;
        try {
            Worker worker = new Worker(Config.fromEnvironment());
            System.out.println(worker.exercise());
            status = 0;
        } catch (ConfigError e) {
            System.err.println("acme-rf-worker: configuration error: " + e.getMessage());
            status = 2;
        } catch (WorkerError e) {
            System.err.println("acme-rf-worker: error: " + e.getMessage());
            status = 1;
        }
        System.exit(status);
    }

    // --- configuration ------------------------------------------------------------------

    static final class ConfigError extends Exception {
        private static final long serialVersionUID = 1L;

        ConfigError(String message) {
            super(message);
        }
    }

    record Config(String clientId, String clientSecret, String network, Path tokenCache) {
        static Config fromEnvironment() throws ConfigError {
            List<String> missing = new ArrayList<>();
            for (String name : List.of("RF_CLIENT_ID", "RF_CLIENT_SECRET", "RF_NETWORK")) {
                String value = System.getenv(name);
                if (value == null || value.isEmpty()) {
                    missing.add(name);
                }
            }
            if (!missing.isEmpty()) {
                throw new ConfigError("missing environment variable(s): " + String.join(", ", missing)
                        + " (RF_CLIENT_ID, RF_CLIENT_SECRET and RF_NETWORK=test|live are required)");
            }
            String network = System.getenv("RF_NETWORK");
            if (!network.equals("test") && !network.equals("live")) {
                throw new ConfigError("RF_NETWORK must be exactly \"test\" or \"live\", got \"" + network + "\"");
            }
            String cache = System.getenv("RF_TOKEN_CACHE");
            Path cachePath = cache == null || cache.isEmpty()
                    ? Path.of(System.getProperty("java.io.tmpdir"), "acme-rf-worker-token.json")
                    : Path.of(cache);
            return new Config(System.getenv("RF_CLIENT_ID"), System.getenv("RF_CLIENT_SECRET"), network,
                    cachePath.toAbsolutePath());
        }

        @Override
        public String toString() { // never the secret, even by accident
            return "Config[clientId=" + clientId + ", network=" + network + ", tokenCache=" + tokenCache + "]";
        }
    }

    // --- errors -------------------------------------------------------------------------

    static class WorkerError extends Exception {
        private static final long serialVersionUID = 1L;

        WorkerError(String message) {
            super(message);
        }
    }

    /** A brand-new access token was refused too: stop and let an operator look (never loop). */
    static final class AccessRefused extends WorkerError {
        private static final long serialVersionUID = 1L;

        AccessRefused(String message) {
            super(message);
        }
    }

    /** An access token and its absolute expiry (epoch seconds, by this machine's clock). */
    record Token(String accessToken, long expiresAt) {
        boolean fresh() {
            return expiresAt - System.currentTimeMillis() / 1000 >= REFRESH_MARGIN_SECONDS;
        }

        @Override
        public String toString() { // never the token itself, even by accident
            return "Token[expiresAt=" + expiresAt + "]";
        }
    }

    private final Config config;
    private final HttpClient http;
    private final TokenCache cache;
    private Token token; // the access token in use; null until the first API call

    Worker(Config config) {
        this.config = config;
        this.cache = new TokenCache(config.tokenCache(), config.clientId());
        // the default proxy selector and SSL context: the JVM's settings apply (rfcheck relies on it)
        this.http = HttpClient.newBuilder().connectTimeout(TIMEOUT).build();
    }

    static void log(String message) {
        System.err.println("acme-rf-worker: " + message);
    }

    // --- API work -----------------------------------------------------------------------

    /** One unit of work: read the invoices and the currency list. */
    String exercise() throws WorkerError {
        List<?> invoices = asList(apiGet("/invoices"), "/invoices");
        List<?> currencies = asList(apiGet("/currency"), "/currency");
        return "acme-rf-worker: read " + invoices.size() + " invoice(s) and " + currencies.size()
                + " currencies (X-Network: " + config.network() + ")";
    }

    private Object apiGet(String path) throws WorkerError {
        Token used = currentToken();
        HttpResponse<String> resp = send(used, path);
        if (resp.statusCode() == 401 && "invalid_token".equals(bearerError(resp))) {
            log("access token rejected (invalid_token); getting a new one once");
            resp = send(newToken(used), path);
            if (resp.statusCode() == 401) { // a brand-new token refused too: stop, never loop
                throw new AccessRefused("GET " + path + ": a new access token was refused as well");
            }
        }
        if (resp.statusCode() != 200) {
            throw new WorkerError("GET " + path + " failed with HTTP " + resp.statusCode());
        }
        try {
            return Json.parse(resp.body());
        } catch (IllegalArgumentException e) {
            throw new WorkerError("GET " + path + ": the answer is not JSON (" + e.getMessage() + ")");
        }
    }

    private HttpResponse<String> send(Token token, String path) throws WorkerError {
        HttpRequest request = HttpRequest.newBuilder(URI.create(API_URL + path)).timeout(TIMEOUT).GET()
                .header("Authorization", "Bearer " + token.accessToken())
                .header("X-Network", config.network())
                .header("Accept", "application/json")
                .build();
        return exchange(request, "GET " + path);
    }

    private HttpResponse<String> exchange(HttpRequest request, String what) throws WorkerError {
        try {
            return http.send(request, HttpResponse.BodyHandlers.ofString());
        } catch (IOException e) {
            throw new WorkerError(what + ": " + e.getClass().getSimpleName() + ": " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new WorkerError(what + ": interrupted");
        }
    }

    private static List<?> asList(Object body, String path) throws WorkerError {
        if (!(body instanceof List<?> list)) {
            throw new WorkerError("GET " + path + ": expected a JSON array");
        }
        return list;
    }

    private static String bearerError(HttpResponse<?> resp) { // RFC 6750 section 3
        Matcher m = Pattern.compile("\\berror=\"([^\"]*)\"")
                .matcher(resp.headers().firstValue("WWW-Authenticate").orElse(""));
        return m.find() ? m.group(1) : null;
    }

    // --- tokens -------------------------------------------------------------------------

    private Token currentToken() throws WorkerError {
        if (token == null) {
            token = cache.read(); // the token an earlier run got, if any
        }
        if (token == null || !token.fresh()) { // reuse until nearly expired
            return newToken(token);
        }
        return token;
    }

    /**
     * A new token, replacing {@code stale} (null: none). Runs that start together share one token
     * request: under the lock, a token that another run stored meanwhile is taken instead.
     */
    private Token newToken(Token stale) throws WorkerError {
        TokenCache.Lock lock = cache.lock();
        try {
            Token current = cache.read();
            if (current != null && current.fresh() && (stale == null || !current.accessToken().equals(stale.accessToken()))) {
                token = current; // another run got one meanwhile
                return token;
            }
            cache.drop();
            log("requesting an access token (client credentials)");
            Map<?, ?> tokens = tokenRequest(form(Map.of("grant_type", "client_credentials", "audience", AUDIENCE)));
            Object accessToken = tokens.get("access_token");
            Object expiresIn = tokens.get("expires_in");
            if (!"bearer".equalsIgnoreCase(String.valueOf(tokens.get("token_type")))
                    || !(accessToken instanceof String) || expiresIn == null) {
                throw new WorkerError("token endpoint: unexpected answer (no Bearer access token)");
            }
            long lifetime;
            try {
                lifetime = (long) Double.parseDouble(expiresIn.toString());
            } catch (NumberFormatException e) {
                throw new WorkerError("token endpoint: expires_in is not a number");
            }
            token = new Token((String) accessToken, System.currentTimeMillis() / 1000 + lifetime);
            cache.write(token);
            return token;
        } finally {
            lock.close();
        }
    }

    private Map<?, ?> tokenRequest(String form) throws WorkerError {
        // client_secret_basic: form-urlencode ID and secret, then base64 (RFC 6749 section 2.3.1)
        String basic = urlencode(config.clientId()) + ":" + urlencode(config.clientSecret());
        HttpRequest request = HttpRequest.newBuilder(URI.create(TOKEN_URL)).timeout(TIMEOUT)
                .header("Authorization", "Basic " + Base64.getEncoder().encodeToString(basic.getBytes(StandardCharsets.UTF_8)))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .header("Accept", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(form))
                .build();
        HttpResponse<String> resp;
        for (int attempt = 0; ; attempt++) {
            resp = exchange(request, "POST /oauth/token");
            if (resp.statusCode() != 429 && resp.statusCode() < 500) {
                break;
            }
            if (attempt == MAX_RETRIES) {
                throw new WorkerError("token endpoint error: temporarily_unavailable HTTP " + resp.statusCode()
                        + " (gave up after " + MAX_RETRIES + " retries)");
            }
            double delay = Math.min(retryAfter(resp, 0.5 * (1 << attempt)), MAX_RETRY_SLEEP_SECONDS);
            log(String.format("token endpoint answered %d; retrying in %.1f s", resp.statusCode(), delay));
            try {
                Thread.sleep((long) (delay * 1000));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new WorkerError("interrupted while waiting to retry the token request");
            }
        }
        Object body;
        try {
            body = Json.parse(resp.body());
        } catch (IllegalArgumentException e) {
            body = Map.of();
        }
        Map<?, ?> fields = body instanceof Map<?, ?> map ? map : Map.of();
        if (resp.statusCode() != 200) {
            Object error = fields.containsKey("error") ? fields.get("error") : resp.statusCode();
            Object description = fields.containsKey("error_description") ? fields.get("error_description") : "";
            throw new WorkerError(("token endpoint error: " + error + " " + description).trim());
        }
        return fields;
    }

    private static double retryAfter(HttpResponse<?> resp, double fallback) {
        try { // Retry-After in seconds; an HTTP date falls back to our own backoff
            return Math.max(0.0, Double.parseDouble(resp.headers().firstValue("Retry-After").orElse("").trim()));
        } catch (NumberFormatException e) {
            return fallback;
        }
    }

    private static String urlencode(String value) {
        return URLEncoder.encode(value, StandardCharsets.UTF_8);
    }

    private static String form(Map<String, String> fields) {
        List<String> pairs = new ArrayList<>();
        new java.util.TreeMap<>(fields).forEach((k, v) -> pairs.add(urlencode(k) + "=" + urlencode(v)));
        return String.join("&", pairs);
    }

    // --- the token cache ----------------------------------------------------------------

    /**
     * The access token between runs: a small JSON file, written atomically (temp file + move) and
     * readable by its owner only. It records the client ID, so a token of other credentials is
     * never used. A lock file next to it serialises token requests between concurrent runs.
     */
    static final class TokenCache {
        private static final boolean POSIX = FileSystems.getDefault().supportedFileAttributeViews().contains("posix");
        private static final Set<PosixFilePermission> OWNER_ONLY = PosixFilePermissions.fromString("rw-------");

        private final Path file;
        private final String clientId;

        TokenCache(Path file, String clientId) {
            this.file = file;
            this.clientId = clientId;
        }

        Token read() {
            String text;
            try {
                text = Files.readString(file);
            } catch (NoSuchFileException e) {
                return null;
            } catch (IOException e) {
                log("token cache " + file + " unreadable (" + e.getClass().getSimpleName() + "); ignoring it");
                return null;
            }
            try {
                if (Json.parse(text) instanceof Map<?, ?> map && clientId.equals(map.get("client_id"))
                        && map.get("access_token") instanceof String token && map.get("expires_at") instanceof Double at) {
                    return new Token(token, at.longValue());
                }
            } catch (IllegalArgumentException e) {
                // fall through: a damaged cache is ignored and replaced
            }
            return null;
        }

        void write(Token token) throws WorkerError {
            Map<String, Object> fields = new LinkedHashMap<>();
            fields.put("client_id", clientId);
            fields.put("access_token", token.accessToken());
            fields.put("expires_at", token.expiresAt());
            Path temporary = null;
            try {
                Path folder = parent();
                Files.createDirectories(folder);
                temporary = Files.createTempFile(folder, ".acme-rf-worker-", ".tmp", ownerOnly());
                Files.writeString(temporary, Json.write(fields));
                try {
                    Files.move(temporary, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
                } catch (AtomicMoveNotSupportedException e) {
                    Files.move(temporary, file, StandardCopyOption.REPLACE_EXISTING);
                }
            } catch (IOException e) {
                throw new WorkerError("cannot write the token cache " + file + ": " + e.getClass().getSimpleName());
            } finally {
                if (temporary != null) {
                    try {
                        Files.deleteIfExists(temporary);
                    } catch (IOException ignored) {
                        // best effort: the move normally took it away
                    }
                }
            }
        }

        void drop() throws WorkerError {
            try {
                Files.deleteIfExists(file);
            } catch (IOException e) {
                throw new WorkerError("cannot remove the token cache " + file + ": " + e.getClass().getSimpleName());
            }
        }

        interface Lock {
            void close() throws WorkerError;
        }

        /** An exclusive lock shared with the other runs (a lock file next to the cache). */
        Lock lock() throws WorkerError {
            Path lockFile = file.resolveSibling(file.getFileName() + ".lock");
            try {
                Files.createDirectories(parent());
                if (POSIX) {
                    try {
                        Files.createFile(lockFile, ownerOnly());
                    } catch (java.nio.file.FileAlreadyExistsException e) {
                        // another run made it
                    }
                }
                FileChannel channel = FileChannel.open(lockFile, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
                FileLock held = channel.lock();
                return () -> {
                    try {
                        held.release();
                        channel.close();
                    } catch (IOException e) {
                        throw new WorkerError("cannot release the token cache lock: " + e.getClass().getSimpleName());
                    }
                };
            } catch (IOException e) {
                throw new WorkerError("cannot lock the token cache " + lockFile + ": " + e.getClass().getSimpleName());
            }
        }

        private Path parent() {
            Path parent = file.getParent();
            return parent != null ? parent : Path.of(".");
        }

        private static FileAttribute<?>[] ownerOnly() {
            return POSIX ? new FileAttribute<?>[] {PosixFilePermissions.asFileAttribute(OWNER_ONLY)}
                    : new FileAttribute<?>[0];
        }
    }

    // --- a tiny JSON reader and writer ----------------------------------------------------

    /** JSON to Map / List / String / Double / Boolean / null, and simple maps back to JSON. */
    static final class Json {
        private final String s;
        private int i;

        private Json(String s) {
            this.s = s;
        }

        static Object parse(String text) {
            Json p = new Json(text);
            Object value = p.value();
            p.space();
            if (p.i != p.s.length()) {
                throw p.error("trailing characters");
            }
            return value;
        }

        static String write(Map<String, Object> fields) {
            StringBuilder out = new StringBuilder("{");
            fields.forEach((k, v) -> {
                out.append(out.length() > 1 ? "," : "").append(quote(k)).append(':');
                out.append(v instanceof String text ? quote(text) : String.valueOf(v));
            });
            return out.append('}').toString();
        }

        private static String quote(String text) {
            StringBuilder out = new StringBuilder("\"");
            for (char c : text.toCharArray()) {
                switch (c) {
                    case '"' -> out.append("\\\"");
                    case '\\' -> out.append("\\\\");
                    default -> out.append(c < 0x20 ? String.format("\\u%04x", (int) c) : String.valueOf(c));
                }
            }
            return out.append('"').toString();
        }

        private IllegalArgumentException error(String what) {
            return new IllegalArgumentException(what + " at offset " + i);
        }

        private void space() {
            while (i < s.length() && Character.isWhitespace(s.charAt(i))) {
                i++;
            }
        }

        private Object value() {
            space();
            if (i >= s.length()) {
                throw error("unexpected end");
            }
            char c = s.charAt(i);
            if (c == '{') {
                Map<String, Object> map = new LinkedHashMap<>();
                i++;
                space();
                if (peek('}')) {
                    return map;
                }
                do {
                    space();
                    if (i >= s.length() || s.charAt(i) != '"') {
                        throw error("expected a key");
                    }
                    String key = string();
                    space();
                    expect(':');
                    map.put(key, value());
                    space();
                } while (peek(','));
                expect('}');
                return map;
            }
            if (c == '[') {
                List<Object> list = new ArrayList<>();
                i++;
                space();
                if (peek(']')) {
                    return list;
                }
                do {
                    list.add(value());
                    space();
                } while (peek(','));
                expect(']');
                return list;
            }
            if (c == '"') {
                return string();
            }
            for (String word : new String[] {"true", "false", "null"}) {
                if (s.startsWith(word, i)) {
                    i += word.length();
                    return word.equals("null") ? null : Boolean.valueOf(word);
                }
            }
            Matcher m = Pattern.compile("-?\\d+(\\.\\d+)?([eE][+-]?\\d+)?").matcher(s).region(i, s.length());
            if (!m.lookingAt()) {
                throw error("unexpected character");
            }
            i = m.end();
            return Double.valueOf(m.group());
        }

        private boolean peek(char c) {
            if (i < s.length() && s.charAt(i) == c) {
                i++;
                return true;
            }
            return false;
        }

        private void expect(char c) {
            if (!peek(c)) {
                throw error("expected '" + c + "'");
            }
        }

        private String string() {
            StringBuilder out = new StringBuilder();
            i++; // the opening quote
            while (i < s.length()) {
                char c = s.charAt(i++);
                if (c == '"') {
                    return out.toString();
                }
                if (c != '\\') {
                    out.append(c);
                    continue;
                }
                if (i >= s.length()) {
                    break;
                }
                char e = s.charAt(i++);
                switch (e) {
                    case 'n' -> out.append('\n');
                    case 't' -> out.append('\t');
                    case 'r' -> out.append('\r');
                    case 'b' -> out.append('\b');
                    case 'f' -> out.append('\f');
                    case 'u' -> {
                        if (i + 4 > s.length()) {
                            throw error("bad \\u escape");
                        }
                        out.append((char) Integer.parseInt(s.substring(i, i + 4), 16));
                        i += 4;
                    }
                    default -> out.append(e); // \" \\ \/
                }
            }
            throw error("unterminated string");
        }
    }
}
