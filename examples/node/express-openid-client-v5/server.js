// The correct app: Request Finance's hosts hard-coded, every other setting from the environment
// (RF_CLIENT_ID, RF_CLIENT_SECRET, RF_REDIRECT_URI, RF_NETWORK, PORT, SESSION_SECRET; see README.md).
'use strict'

require('./app').start()
