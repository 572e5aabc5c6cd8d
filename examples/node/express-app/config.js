// Configuration from environment variables only: no secret ever lives in a file.
//
//   RF_ISSUER         authorization server base URL, no trailing slash (https://auth.request.finance);
//                     its discovery document names "<RF_ISSUER>/" as issuer (Auth0 style)
//   RF_API_URL        API base URL (https://api.request.finance)
//   RF_CLIENT_ID      OAuth app client ID
//   RF_CLIENT_SECRET  OAuth app client secret
//   RF_REDIRECT_URI   the registered callback URL of this app (http://localhost:3000/callback)
//   RF_NETWORK        X-Network value of this deployment: exactly "test" or "live"
//   PORT              port to listen on (default 3000)
//   RF_ALLOW_HTTP     "1": allow plain-HTTP issuer/API URLs (local testing only; see README)

const REQUIRED = {
  issuer: 'RF_ISSUER',
  apiUrl: 'RF_API_URL',
  clientId: 'RF_CLIENT_ID',
  clientSecret: 'RF_CLIENT_SECRET',
  redirectUri: 'RF_REDIRECT_URI',
  network: 'RF_NETWORK',
}

export class ConfigError extends Error {}

/** The app's settings from `env`; `overrides` win and need no variable (used by the variants). */
export function loadConfig(overrides = {}, env = process.env) {
  const config = { port: Number(env.PORT || 3000), allowHttp: env.RF_ALLOW_HTTP === '1' }
  for (const [key, variable] of Object.entries(REQUIRED)) {
    if (key in overrides) continue
    if (!env[variable]) throw new ConfigError(`missing environment variable ${variable}`)
    config[key] = env[variable]
  }
  Object.assign(config, overrides)
  if (config.network !== 'test' && config.network !== 'live') {
    throw new ConfigError('RF_NETWORK must be exactly "test" or "live"')
  }
  config.issuer = config.issuer.replace(/\/+$/, '')
  config.apiUrl = config.apiUrl.replace(/\/+$/, '')
  return config
}
