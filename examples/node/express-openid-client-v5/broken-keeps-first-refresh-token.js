// BROKEN on purpose (TOKEN-03): keeps the login's refresh token and ignores the rotated one each
// refresh returns, as Request Finance's public Express demo does
// (`user.refreshToken ??= tokenSet.refresh_token`). The first refresh works; the second presents
// a rotated refresh token again, so the provider (Auth0 rotation) revokes the whole family.
'use strict'

require('./app').start({ keepFirstRefreshToken: true })
