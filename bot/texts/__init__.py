"""Every user-visible string, in one place: this package, one module per audience.

Messages are HTML (`parse_mode` from PTB's `Defaults`, set in `bot.app`): user text goes through
`bot.markup.esc`, and `fit` keeps each message under 4,096 characters. Plain-text constants are
also what the learning loop raises (a refused label or rollback); handlers escape them. What it
records in the database (a failed run's error, the gate's reasons) is written where it is
decided, and the reports quote it.

The modules: `common` (emoji, buttons, generic answers, the command menu), `chat` (the scored
reply, /start, /help, /forget, /mood), `labeling` (the /label queue), `admin` (/status, /export,
retraining, /models, /rollback), `console` (`sentibot chat`). Callers write
`from bot import texts` and `texts.NAME`: every public name is re-exported here.
"""

from bot.markup import esc, fit, quote  # noqa: F401  (texts.esc and friends, as before)
from bot.texts.admin import *  # noqa: F403
from bot.texts.chat import *  # noqa: F403
from bot.texts.common import *  # noqa: F403
from bot.texts.console import *  # noqa: F403
from bot.texts.labeling import *  # noqa: F403
from bot.texts.operator import *  # noqa: F403
from bot.texts.trust import *  # noqa: F403
