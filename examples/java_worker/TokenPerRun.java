/*
 * DELIBERATELY BROKEN variant of Worker.java, for rfcheck's own demonstration: the worker as a
 * team first writes it. Every run asks the token endpoint for a new access token and throws it
 * away at exit, although each token is valid for 24 hours. Request Finance requires the token to
 * be reused until it expires: rfcheck fails TOKEN-01 ("Reuses the access token until it expires:
 * no new token or refresh per call"). Everything else is done right (client_secret_basic,
 * audience=accounts, Bearer and X-Network on every call, no token in the output).
 *
 * Do not copy this one: copy Worker.java. Run: `java TokenPerRun.java` (same environment).
 */

import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

public final class TokenPerRun {
    static final String TOKEN_URL = "https://auth.request.finance/oauth/token";
    static final String API_URL = "https://api.request.finance";

    public static void main(String[] args) throws Exception {
        String clientId = System.getenv("RF_CLIENT_ID");
        String clientSecret = System.getenv("RF_CLIENT_SECRET");
        String network = System.getenv("RF_NETWORK");
        if (clientId == null || clientSecret == null || !("test".equals(network) || "live".equals(network))) {
            System.err.println("token-per-run: set RF_CLIENT_ID, RF_CLIENT_SECRET and RF_NETWORK=test|live");
            System.exit(2);
        }
        HttpClient http = HttpClient.newHttpClient();

        // BROKEN: a new token on every run (no cache), so one token request per unit of work
        String basic = URLEncoder.encode(clientId, StandardCharsets.UTF_8) + ":"
                + URLEncoder.encode(clientSecret, StandardCharsets.UTF_8);
        HttpResponse<String> tokenResponse = http.send(HttpRequest.newBuilder(URI.create(TOKEN_URL))
                .header("Authorization", "Basic " + Base64.getEncoder().encodeToString(basic.getBytes(StandardCharsets.UTF_8)))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .POST(HttpRequest.BodyPublishers.ofString("grant_type=client_credentials&audience=accounts"))
                .build(), HttpResponse.BodyHandlers.ofString());
        Matcher token = Pattern.compile("\"access_token\"\\s*:\\s*\"([^\"]+)\"").matcher(tokenResponse.body());
        if (tokenResponse.statusCode() != 200 || !token.find()) {
            System.err.println("token-per-run: token request failed with HTTP " + tokenResponse.statusCode());
            System.exit(1);
        }

        int invoices = 0;
        for (String path : new String[] {"/invoices", "/currency"}) {
            HttpResponse<String> resp = http.send(HttpRequest.newBuilder(URI.create(API_URL + path))
                    .header("Authorization", "Bearer " + token.group(1))
                    .header("X-Network", network)
                    .header("Accept", "application/json")
                    .build(), HttpResponse.BodyHandlers.ofString());
            if (resp.statusCode() != 200) {
                System.err.println("token-per-run: GET " + path + " failed with HTTP " + resp.statusCode());
                System.exit(1);
            }
            if (path.equals("/invoices")) {
                invoices = resp.body().split("\"invoiceNumber\"", -1).length - 1; // one per invoice
            }
        }
        System.out.println("token-per-run: read " + invoices + " invoice(s) and the currency list");
    }
}
