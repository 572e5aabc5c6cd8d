// Starts the app: every setting from the environment (ISSUER_BASE_URL, BASE_URL, CLIENT_ID,
// CLIENT_SECRET, SECRET for express-openid-connect; RF_API_URL, RF_NETWORK, PORT; see README.md).
'use strict'

require('./app').start()
