// BROKEN on purpose (NET-03): X-Network "test" hard-coded, whatever RF_NETWORK says.
// Its config, broken-network.toml, deploys it with network = "live".
import { start } from './app.js'

start({ network: 'test' })
