"""The shipped reader's folder and a short text with questions, shared by the tests of its runtimes."""

from qa.config import PROJECT_ROOT

SHIPPED = PROJECT_ROOT / "models" / "reader"
UNREST = ("Unrest began in the city of Zhanaozen on 2 January 2022 after fuel prices doubled. "
          "By 5 January the protests had spread to Almaty, the largest city, where the airport was seized. "
          "The government resigned on 5 January and a state of emergency was declared for two weeks.")
UNREST_QUESTIONS = ["When did the unrest begin?", "Where did the protests spread?", "What was seized in Almaty?",
                    "How long was the state of emergency?", "Why did the unrest begin?", "Who resigned on 5 January?"]
