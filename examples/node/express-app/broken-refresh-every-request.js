// BROKEN on purpose (TOKEN-01): refreshes the access token before every API call instead of
// reusing it until it nearly expires (24 h).
import { start } from './app.js'

start({ refreshMarginMs: Infinity })
