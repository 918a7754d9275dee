"""The file MLflow keeps as a logged model's code ("models from code", no pickle): loading or
serving the model runs it, and it names the class that predicts."""

from mlflow.models import set_model

from pipeline.serving import Classifier

set_model(Classifier())
