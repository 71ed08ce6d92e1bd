# Entry point on the board (and on the simulated board): run the nightstand application.
from nsdev import app

app.main()
