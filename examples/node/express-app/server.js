// The correct app: every setting from the environment (see config.js and README.md).
import { start } from './app.js'

start()
