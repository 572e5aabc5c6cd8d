// BROKEN on purpose (TOKEN-03): keeps the first refresh token and ignores the rotated one each
// refresh returns. The second refresh reuses a rotated token, so the provider revokes the family.
import { start } from './app.js'

start({ keepRotatedRefreshToken: false })
