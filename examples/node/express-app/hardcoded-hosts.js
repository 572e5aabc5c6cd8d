// The correct app with the real hosts hard-coded instead of RF_ISSUER and RF_API_URL, as many
// production apps are written. rfcheck judges it in proxy mode ([target.intercept] proxy = true):
// its traffic goes through HTTPS_PROXY (CONNECT) to the mock.
//
// Node's fetch does not read HTTPS_PROXY/HTTP_PROXY/NO_PROXY by itself, so every request
// (discovery, JWKS, token endpoint, API) goes through openid-client's customFetch: undici's
// fetch with an EnvHttpProxyAgent, which does read them. Without a proxy variable set, it
// connects directly.
import { EnvHttpProxyAgent, fetch as undiciFetch } from 'undici'
import { start } from './app.js'

const dispatcher = new EnvHttpProxyAgent()

start({
  issuer: 'https://auth.request.finance',
  apiUrl: 'https://api.request.finance',
  fetch: (url, init) => undiciFetch(url, { ...init, dispatcher }),
})
